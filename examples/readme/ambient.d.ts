// For type-checking the README's snippets only: the names they take as given.
declare const clientId: string;
declare const clientSecret: string;
declare const Deno: { openKv(): Promise<import('autopay-auth/deno-kv').DenoKvLike> };
