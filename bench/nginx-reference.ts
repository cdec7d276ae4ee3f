// The machine's floor for one hop: nginx injecting a fixed token, timed in the 20 ms rounds
// next to the product and the bare proxy. A reference, not a target: it shows what a proxy
// that runs no JavaScript adds on the same cores, so a latency or burst figure the machine
// cannot reach is told from one the product misses. Left out when nginx is not installed
// (Debian: nginx-light); `NGINX=/path/to/nginx` picks another binary.
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { readFileSync, writeFileSync } from "node:fs";
import net from "node:net";
import path from "node:path";
import { freePort } from "./common.js";

/** Where nginx is looked for: Debian installs it in /usr/sbin, which a user's PATH may lack. */
const BINARIES = process.env["NGINX"] !== undefined ? [process.env["NGINX"]] : ["nginx", "/usr/sbin/nginx"];

/** nginx's base URL, or why there is none. */
export type Reference = { readonly url: string } | { readonly missing: string };

/**
 * One worker (the product is one process), a keep-alive pool, the token appended to the query.
 * `$uri` is the decoded path: enough for the bench's GETs, not a proxy for arbitrary paths.
 */
function config(upstream: URL, token: string, port: number, dir: string): string {
  const temp = (name: string) => `${name}_temp_path ${path.join(dir, `nginx-${name}`)};`;
  return `worker_processes 1;
daemon off;
pid ${path.join(dir, "nginx.pid")};
events { worker_connections 4096; }
http {
  access_log off;
  ${["client_body", "proxy", "fastcgi", "uwsgi", "scgi"].map(temp).join("\n  ")}
  upstream wecom { server ${upstream.host}; keepalive 256; }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://wecom$uri?$args&access_token=${token};
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
`;
}

export async function startNginx(
  upstream: string,
  token: string,
  dir: string,
  children: ChildProcess[],
): Promise<Reference> {
  const port = await freePort();
  const file = path.join(dir, "nginx.conf");
  const errorLog = path.join(dir, "nginx-error.log");
  writeFileSync(file, config(new URL(upstream), token, port, dir));
  for (const binary of BINARIES) {
    const child = spawn(binary, ["-p", dir, "-c", file, "-e", errorLog], { stdio: "ignore" });
    const started = await Promise.race([
      accepting(port).then((up) => (up ? ("up" as const) : ("silent" as const))),
      once(child, "error").then(() => "absent" as const),
      once(child, "exit").then(() => "exited" as const),
    ]);
    if (started === "up") {
      children.push(child);
      return { url: `http://127.0.0.1:${port}` };
    }
    if (started === "exited") return { missing: `nginx did not start: ${lastLine(errorLog)}` };
    if (started === "silent") {
      child.kill("SIGTERM"); // the master stops its worker too
      return { missing: "nginx did not accept connections within 5 s" };
    }
  }
  return { missing: "nginx is not installed (Debian: nginx-light)" };
}

/** Whether something accepts connections on 127.0.0.1:port within 5 s. */
async function accepting(port: number): Promise<boolean> {
  for (let attempt = 0; attempt < 100; attempt += 1) {
    const connected = await new Promise<boolean>((resolve) => {
      const socket = net
        .connect(port, "127.0.0.1", () => {
          socket.destroy();
          resolve(true);
        })
        .on("error", () => resolve(false));
    });
    if (connected) return true;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return false;
}

function lastLine(file: string): string {
  try {
    return readFileSync(file, "utf8").trim().split("\n").at(-1) ?? "no error logged";
  } catch {
    return "no error logged";
  }
}
