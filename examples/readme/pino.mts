import pino from 'pino';
import { AutopayAuth } from 'autopay-auth';
// pino takes (fields, message); console and winston take (message, fields), the default
const auth = new AutopayAuth({ clientId, clientSecret, logger: pino(), loggerArgs: 'fields-first' });
