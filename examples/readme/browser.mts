import { AutopayAuth } from 'autopay-auth';
// A client secret in a web page is readable by anyone who opens it: this throws
// AutopayAuthError { code: "invalid_config", option: "clientSecret" } unless you opt in.
const auth = new AutopayAuth({ clientId, clientSecret, dangerouslyAllowBrowser: true });
