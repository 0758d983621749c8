import { z } from 'zod';
import { webhookPayloadSchemas } from '@snapcat/domain';

const BASE_ID = 'https://snapcat.dev/schema/webhooks';

/**
 * The JSON Schema (draft 2020-12) of every webhook payload, generated from the zod schemas the service
 * itself validates events with: file name -> content. index.json is the union of them all.
 */
export function webhookJsonSchemaFiles(): Record<string, string> {
  const files: Record<string, string> = {};
  const types = Object.entries(webhookPayloadSchemas());
  for (const [type, schema] of types) {
    const json = {
      $id: `${BASE_ID}/${type}.json`,
      ...z.toJSONSchema(schema, { target: 'draft-2020-12', io: 'output' }),
    };
    files[`${type}.json`] = `${JSON.stringify(json, null, 2)}\n`;
  }
  const index = {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    $id: `${BASE_ID}/index.json`,
    title: 'snapcat webhook payload',
    description: 'The body of every webhook snapcat sends: {type, timestamp, data}, one schema per type.',
    oneOf: types.map(([type]) => ({ $ref: `${type}.json` })),
  };
  files['index.json'] = `${JSON.stringify(index, null, 2)}\n`;
  return files;
}
