import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { KVNamespaceLike } from './index.js';

export interface DynamoKVOptions {
  /** The table: a string partition key named `keyAttribute`, and TTL enabled on `ttlAttribute`. */
  table: string;
  /** Prepended to every key. Default none. */
  prefix?: string;
  /** The partition key's name. Default `pk`. */
  keyAttribute?: string;
  /** The TTL attribute's name (epoch seconds; checked on every read as well). Default `expiresAt`. */
  ttlAttribute?: string;
}

/**
 * A DynamoDB table as the shared token store, for AWS Lambda. Functions sharing the table mint
 * once between them (a conditional put, `attribute_not_exists`, as the minting lock). Reads are
 * strongly consistent.
 */
export function dynamoKV(client: DynamoDBClient, options: DynamoKVOptions): KVNamespaceLike & Required<Pick<KVNamespaceLike, 'putIfAbsent' | 'deleteIf' | 'minExpirationTtl'>>;
