// A fake WeCom in its own process, so the benchmark's upstream does not share the proxy's
// event loop. Prints {"url": …} once listening; stops on SIGTERM. A second argument, a
// number of milliseconds, makes every API answer (not gettoken) wait that long.
import { FakeWeCom, type FakeApp } from "../src/sandbox/fake-wecom.js";

const apps = JSON.parse(process.argv[2] ?? "[]") as FakeApp[];
const latencyMs = Number(process.argv[3] ?? 0);
// Far above WeCom's limits: the benchmarks measure the proxy, not WeCom's blocks.
const wecom = new FakeWeCom({ apps, limits: { messagesPerMember: false, perApi: false, perIp: false } });
if (latencyMs > 0) {
  for (const path of ["/cgi-bin/user/get", "/cgi-bin/message/send"])
    wecom.addFault({ path, times: Number.MAX_SAFE_INTEGER, delayMs: latencyMs });
}
const url = await wecom.listen();
process.stdout.write(`${JSON.stringify({ url })}\n`);
process.once("SIGTERM", () => void wecom.close().then(() => process.exit(0)));
