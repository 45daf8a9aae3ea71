import { metrics, trace } from '@opentelemetry/api';
import { AutopayAuth } from 'autopay-auth';
// the Meter and Tracer your service's OpenTelemetry SDK already provides; either may be left out
const telemetry = { meter: metrics.getMeter('my-service'), tracer: trace.getTracer('my-service') };
const auth = new AutopayAuth({ clientId, clientSecret, telemetry });
