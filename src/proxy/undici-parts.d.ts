// undici's index also loads fetch, WebSocket, its caches and mocks (about 8 MiB of the
// process's memory); a proxy that goes out directly loads only the pool it uses.
declare module "undici/lib/dispatcher/pool.js" {
  import type { Pool } from "undici";
  const PoolClass: typeof Pool;
  export default PoolClass;
}
