// Amazon DynamoDB (`@aws-sdk/client-dynamodb`) as the shared token store, for AWS Lambda.
// Guarantee: functions sharing one table mint once between them (a conditional put as the
// minting lock). Items carry their expiry (epoch seconds) in a TTL attribute: DynamoDB's TTL
// deletes them, but late (often hours), so every read and every lock claim checks it too.
import { DeleteItemCommand, GetItemCommand, PutItemCommand } from '@aws-sdk/client-dynamodb';

const seconds = (ms) => Math.ceil(ms / 1000);

/** Wraps a `DynamoDBClient` and a table in the KVNamespace shape (+ `putIfAbsent`). */
export function dynamoKV(client, { table, prefix = '', keyAttribute = 'pk', ttlAttribute = 'expiresAt' } = {}) {
  if (client === null || typeof client !== 'object' || typeof client.send !== 'function') {
    throw new TypeError('dynamoKV: a DynamoDBClient (from @aws-sdk/client-dynamodb) is required');
  }
  for (const [name, v] of Object.entries({ table, keyAttribute, ttlAttribute })) {
    if (typeof v !== 'string' || v === '') throw new TypeError(`dynamoKV: ${name} must be a non-empty string`);
  }
  if (typeof prefix !== 'string') throw new TypeError('dynamoKV: prefix must be a string');
  const Key = (key) => ({ [keyAttribute]: { S: prefix + key } });
  const item = (key, value, expiresAtSec) => ({
    ...Key(key),
    value: { S: value },
    ...(expiresAtSec === undefined ? {} : { [ttlAttribute]: { N: String(expiresAtSec) } }),
  });
  return {
    minExpirationTtl: 1,
    async get(key) {
      // strongly consistent: a lock winner must see the record written just before it won
      const { Item } = await client.send(new GetItemCommand({ TableName: table, Key: Key(key), ConsistentRead: true }));
      if (Item === undefined) return null;
      const expiresAt = Item[ttlAttribute]?.N;
      if (expiresAt !== undefined && Number(expiresAt) * 1000 <= Date.now()) return null; // not yet deleted
      return typeof Item.value?.S === 'string' ? Item.value.S : null;
    },
    async put(key, value, { expirationTtl } = {}) {
      const expiresAt = expirationTtl === undefined ? undefined : seconds(Date.now() + expirationTtl * 1000);
      await client.send(new PutItemCommand({ TableName: table, Item: item(key, value, expiresAt) }));
    },
    async delete(key) {
      await client.send(new DeleteItemCommand({ TableName: table, Key: Key(key) }));
    },
    // a conditional delete: only while the item holds `expected` (fenced lock release, the
    // refused token's record)
    async deleteIf(key, expected) {
      try {
        await client.send(
          new DeleteItemCommand({
            TableName: table,
            Key: Key(key),
            ConditionExpression: '#v = :v',
            ExpressionAttributeNames: { '#v': 'value' },
            ExpressionAttributeValues: { ':v': { S: expected } },
          }),
        );
        return true;
      } catch (e) {
        if (e?.name === 'ConditionalCheckFailedException') return false;
        throw e;
      }
    },
    async putIfAbsent(key, value, { ttlMs }) {
      const now = Date.now();
      try {
        await client.send(
          new PutItemCommand({
            TableName: table,
            Item: item(key, value, seconds(now + ttlMs)),
            // absent, or there but expired and not yet deleted
            ConditionExpression: 'attribute_not_exists(#k) OR #t <= :now',
            ExpressionAttributeNames: { '#k': keyAttribute, '#t': ttlAttribute },
            ExpressionAttributeValues: { ':now': { N: String(Math.floor(now / 1000)) } },
          }),
        );
        return true;
      } catch (e) {
        if (e?.name === 'ConditionalCheckFailedException') return false;
        throw e;
      }
    },
  };
}
