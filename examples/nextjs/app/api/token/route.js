// A route handler on the Node.js runtime.
import { autopay } from '../../../lib/autopay.js';

export const runtime = 'nodejs';
export const dynamic = 'force-dynamic';

export async function GET() {
  const { source, expiresAt } = await autopay().getTokenInfo();
  return Response.json({ runtime: 'nodejs', source, expiresAt });
}
