// A multipart/form-data upload of one file, as WeCom's media/upload takes it.
import { randomBytes } from "node:crypto";

export function multipart(file: Buffer): { body: Buffer; contentType: string } {
  const boundary = `----wecomproxytest${randomBytes(8).toString("hex")}`;
  const body = Buffer.concat([
    Buffer.from(
      `--${boundary}\r\nContent-Disposition: form-data; name="media"; filename="report.pdf"; filelength=${file.length}\r\n`,
    ),
    Buffer.from("Content-Type: application/pdf\r\n\r\n"),
    file,
    Buffer.from(`\r\n--${boundary}--\r\n`),
  ]);
  return { body, contentType: `multipart/form-data; boundary=${boundary}` };
}
