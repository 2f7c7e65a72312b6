// The part of oidc-provider's internals that internals.ts reads: the provider's own
// router. (The library publishes no types for it.)
declare module 'oidc-provider/lib/helpers/weak_cache.js' {
  type Router = { match(method: string, path: string): { route: { name: string } } | undefined };
  const instance: (provider: object) => { router?: Router } | undefined;
  export default instance;
}
