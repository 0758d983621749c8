import { BlockList, isIP } from 'node:net';
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';

/** Addresses a webhook must not reach: a subscriber could otherwise make snapcat probe its own network. */
const refused = new BlockList();
for (const [network, prefix] of [
  ['0.0.0.0', 8], // "this" network
  ['10.0.0.0', 8],
  ['100.64.0.0', 10], // carrier-grade NAT
  ['127.0.0.0', 8],
  ['169.254.0.0', 16], // link-local, cloud metadata endpoints
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['224.0.0.0', 4], // multicast
  ['240.0.0.0', 4], // reserved, broadcast
] as const) {
  refused.addSubnet(network, prefix, 'ipv4');
}
for (const [network, prefix] of [
  ['::', 96], // unspecified, loopback, and IPv4-compatible (::7f00:1 is 127.0.0.1)
  ['::ffff:0:0:0', 96], // IPv4-translated
  ['64:ff9b:1::', 48], // local-use NAT64 (RFC 8215): the IPv4 it carries is the network's own choice
  ['100::', 64], // discard
  ['2001::', 32], // Teredo: a tunnel to whatever IPv4 it encodes
  ['2002::', 16], // 6to4: likewise
  ['fc00::', 7], // unique local
  ['fec0::', 10], // site-local (deprecated, still routed by some networks)
  ['fe80::', 10], // link-local
  ['ff00::', 8], // multicast
] as const) {
  refused.addSubnet(network, prefix, 'ipv6');
}

/** True for loopback, link-local, private and other non-public addresses, IPv4 inside IPv6 included. */
export function isPrivateAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 4) return refused.check(address, 'ipv4');
  if (family !== 6) return true;
  const embedded = /^(?:::ffff:|64:ff9b::)(\d+\.\d+\.\d+\.\d+)$/i.exec(address)?.[1] ?? mappedHex(address);
  if (embedded) return refused.check(embedded, 'ipv4');
  return refused.check(address, 'ipv6');
}

/**
 * ::ffff:7f00:1 is 127.0.0.1 written in hex; 64:ff9b::a00:1 is NAT64's 10.0.0.1, as resolvers and the URL
 * parser write it (never dotted).
 */
function mappedHex(address: string): string | undefined {
  const match = /^(?:::ffff:|64:ff9b::)([0-9a-f]{1,4}):([0-9a-f]{1,4})$/i.exec(address);
  if (!match) return undefined;
  const high = parseInt(match[1]!, 16);
  const low = parseInt(match[2]!, 16);
  return [high >> 8, high & 255, low >> 8, low & 255].join('.');
}

export class AddressRefusedError extends Error {
  override name = 'AddressRefusedError';
  constructor(
    readonly host: string,
    readonly address: string,
  ) {
    super(`${host} resolves to ${address}, a loopback, link-local or private address`);
  }
}

/** The URL's host as a resolver takes it (IPv6 literals without their brackets). */
export const hostOf = (url: string | URL): string => new URL(url).hostname.replace(/^\[(.*)\]$/, '$1');

/** Resolves the URL's host; throws AddressRefusedError when any address it has is not public. */
export async function assertPublicUrl(url: string): Promise<void> {
  const host = hostOf(url);
  const addresses: LookupAddress[] = isIP(host)
    ? [{ address: host, family: isIP(host) }]
    : await new Promise((resolve, reject) =>
        dnsLookup(host, { all: true }, (error, found) => (error ? reject(error) : resolve(found))),
      );
  const bad = addresses.find((a) => isPrivateAddress(a.address));
  if (bad) throw new AddressRefusedError(host, bad.address);
}

/**
 * A `lookup` for http.request that refuses private addresses at connection time, so a name that
 * resolved to a public address when the subscription was made cannot be re-pointed inside later.
 */
export const publicOnlyLookup: typeof dnsLookup = ((
  hostname: string,
  options: object,
  callback: (error: Error | null, address: string | LookupAddress[], family?: number) => void,
) => {
  dnsLookup(hostname, { ...options, all: true }, (error, addresses) => {
    if (error) return callback(error, '');
    const bad = addresses.find((a) => isPrivateAddress(a.address));
    if (bad) return callback(new AddressRefusedError(hostname, bad.address), '');
    if ((options as { all?: boolean }).all) return callback(null, addresses);
    const first = addresses[0]!;
    callback(null, first.address, first.family);
  });
}) as typeof dnsLookup;
