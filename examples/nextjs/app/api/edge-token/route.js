// The same route handler on the edge runtime (Vercel Edge Functions run the same way).
import { autopay } from '../../../lib/autopay.js';

export const runtime = 'edge';
export const dynamic = 'force-dynamic';

export async function GET() {
  const { source, expiresAt } = await autopay().getTokenInfo();
  return Response.json({ runtime: 'edge', source, expiresAt });
}
