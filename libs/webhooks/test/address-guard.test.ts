import type { LookupAddress } from 'node:dns';
import { AddressRefusedError, assertPublicUrl, hostOf, isPrivateAddress, publicOnlyLookup } from '../src';

// The resolver is replaced: each name resolves to the addresses this table gives (no network needed).
const table: Record<string, LookupAddress[]> = {
  'public.example': [
    { address: '93.184.215.14', family: 4 },
    { address: '2606:2800:21f:cb07:6820:80da:af6b:8b2c', family: 6 },
  ],
  'mixed.example': [
    { address: '93.184.215.14', family: 4 },
    { address: '10.1.2.3', family: 4 },
  ],
};
jest.mock('node:dns', () => ({
  ...jest.requireActual('node:dns'),
  lookup: (
    host: string,
    options: { all?: boolean },
    callback: (error: Error | null, addresses?: LookupAddress[]) => void,
  ) => {
    expect(options.all).toBe(true);
    const found = table[host];
    setImmediate(() =>
      found
        ? callback(null, found)
        : callback(Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' })),
    );
  },
}));

const lookup = (host: string, options: object) =>
  new Promise<{ error: Error | null; address: string | LookupAddress[]; family?: number }>((resolve) =>
    (publicOnlyLookup as unknown as (h: string, o: object, cb: (...a: unknown[]) => void) => void)(
      host,
      options,
      (error, address, family) =>
        resolve({ error: error as Error | null, address: address as string, family: family as number }),
    ),
  );

describe('address guard', () => {
  it('publicOnlyLookup answers the first address (and its family), or all of them when asked', async () => {
    expect(await lookup('public.example', {})).toEqual({ error: null, address: '93.184.215.14', family: 4 });
    expect(await lookup('public.example', { all: true })).toEqual({
      error: null,
      address: table['public.example'],
      family: undefined,
    });
  });

  it('publicOnlyLookup refuses a name with any private address, and passes resolver errors on', async () => {
    const refused = await lookup('mixed.example', {});
    expect(refused.error).toBeInstanceOf(AddressRefusedError);
    expect(refused.error!.message).toBe(
      'mixed.example resolves to 10.1.2.3, a loopback, link-local or private address',
    );
    expect(refused.error).toMatchObject({
      name: 'AddressRefusedError',
      host: 'mixed.example',
      address: '10.1.2.3',
    });
    expect(refused.address).toBe('');
    const missing = await lookup('missing.example', {});
    expect(missing.error?.message).toBe('getaddrinfo ENOTFOUND missing.example');
    expect(missing.address).toBe('');
  });

  it('assertPublicUrl resolves the host: public passes, any private address or none refuses', async () => {
    await expect(assertPublicUrl('https://public.example/hook')).resolves.toBeUndefined();
    await expect(assertPublicUrl('https://mixed.example/hook')).rejects.toThrow(
      new AddressRefusedError('mixed.example', '10.1.2.3'),
    );
    await expect(assertPublicUrl('https://missing.example/hook')).rejects.toThrow(/ENOTFOUND/);
    // Literals are not looked up.
    await expect(assertPublicUrl('http://[2606:2800:21f:cb07::1]/x')).resolves.toBeUndefined();
    await expect(assertPublicUrl('http://[fe80::1]/x')).rejects.toThrow('fe80::1 resolves to fe80::1');
    await expect(assertPublicUrl('http://169.254.169.254/latest')).rejects.toThrow(AddressRefusedError);
    // A NAT64 literal: the URL parser writes it in hex (64:ff9b::a00:1 is 10.0.0.1).
    await expect(assertPublicUrl('http://[64:ff9b::10.0.0.1]/x')).rejects.toThrow(AddressRefusedError);
  });

  it('hostOf gives IPv6 literals without brackets', () => {
    expect(hostOf('http://[::1]:8080/x')).toBe('::1');
    expect(hostOf(new URL('https://Example.COM/x'))).toBe('example.com');
    expect(hostOf('http://10.0.0.1/')).toBe('10.0.0.1');
  });

  it.each([
    ['::ffff:c0a8:0101', true], // 192.168.1.1 in hex
    ['::ffff:0808:0808', false], // 8.8.8.8 in hex
    ['::FFFF:7F00:0001', true],
    ['::ffff:a00:1', true], // 10.0.0.1
    ['::ffff:1:1', true], // 0.1.0.1: "this" network
    ['::ffff:5db8:d70e', false],
    ['64:ff9b::8.8.8.8', false],
    ['64:FF9B::127.0.0.1', true],
    ['::FFFF:10.0.0.1', true],
    ['ff02::1', true],
    ['fc00::1', true],
    ['2606:4700::ffff:7f00:1', false],
    ['2606:4700::ffff:127.0.0.1', false], // a dotted quad ending another address is not embedded
    ['64:ff9b::192.168.10.10', true], // NAT64 of a private address, octets of several digits
    ['64:ff9b::c0a8:a0a', true], // the same in hex: as a resolver or a URL writes it
    ['64:ff9b::a00:1', true], // 10.0.0.1
    ['64:ff9b::808:808', false], // 8.8.8.8
    ['64:ff9b::a00:1:5', false], // 64:ff9b:0:0:0:a00:1:5, outside 64:ff9b::/96: no IPv4 in it
    ['::ffff:7f00:1:5', false], // 0:0:0:0:ffff:7f00:1:5, outside ::ffff:0:0/96: not 127.0.0.1
    // Ranges carrying IPv4 or reaching a local network a review found let through:
    ['::7f00:1', true], // IPv4-compatible 127.0.0.1
    ['::a00:1', true], // IPv4-compatible 10.0.0.1
    ['::ffff:0:7f00:1', true], // IPv4-translated
    ['64:ff9b:1::a00:1', true], // local-use NAT64
    ['2002:7f00:1::1', true], // 6to4 of 127.0.0.1
    ['2001:0:4136:e378::1', true], // Teredo
    ['fec0::1', true], // site-local
    ['100::1', true], // discard
    ['2606:4700:4700::1111', false], // a public address
    // Reserved ranges the README refuses, and NAT64 written short, a review found let through:
    ['192.0.2.1', true],
    ['198.51.100.7', true],
    ['203.0.113.9', true],
    ['192.88.99.1', true],
    ['2001:db8::1', true],
    ['64:ff9b::1', true], // 0.0.0.1
    ['64:ff9b:0:0:0:0:a00:1', true], // 10.0.0.1, written in full
    ['0:0:0:0:0:ffff:7f00:1', true], // 127.0.0.1, written in full
    ['64:ff9b::0:808:808', false], // 8.8.8.8
    ['', true],
  ])('isPrivateAddress(%s) is %s', (address, expected) => {
    expect(isPrivateAddress(address)).toBe(expected);
  });
});
