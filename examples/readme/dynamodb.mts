import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { AutopayAuth } from 'autopay-auth';
import { dynamoKV } from 'autopay-auth/dynamodb';
// a table with a string partition key `pk`, TTL enabled on `expiresAt`; outside the handler,
// so each Lambda instance keeps its client (and its token in memory) between invocations
const auth = new AutopayAuth({ clientId, clientSecret, kv: dynamoKV(new DynamoDBClient({}), { table: 'autopay-tokens' }) });
