// A fake WeCom in its own process, so the benchmark's upstream does not share the proxy's
// event loop. Prints {"url": …} once listening; stops on SIGTERM.
import { FakeWeCom, type FakeApp } from "../src/sandbox/fake-wecom.js";

const apps = JSON.parse(process.argv[2] ?? "[]") as FakeApp[];
// Far above WeCom's limits: the benchmarks measure the proxy, not WeCom's blocks.
const wecom = new FakeWeCom({ apps, limits: { messagesPerMember: false, perApi: false } });
const url = await wecom.listen();
process.stdout.write(`${JSON.stringify({ url })}\n`);
process.once("SIGTERM", () => void wecom.close().then(() => process.exit(0)));
