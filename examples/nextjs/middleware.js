// Middleware (edge runtime) in front of the Autopay API: /autopay/<path> is forwarded to
// AUTOPAY_API_BASE/<path> with the Autopay bearer token; callers never hold credentials.
// (Put your own caller authentication first.)
import { NextResponse } from 'next/server';
import { autopay } from './lib/autopay.js';

export const config = { matcher: '/autopay/:path*' };

export async function middleware(request) {
  const token = await autopay().getToken();
  const { pathname, search } = request.nextUrl;
  const target = new URL(pathname.slice('/autopay'.length) + search, process.env.AUTOPAY_API_BASE);
  const headers = new Headers(request.headers);
  headers.set('authorization', `Bearer ${token}`);
  headers.delete('cookie');
  return NextResponse.rewrite(target, { request: { headers } });
}
