import type { ServerResponse } from "node:http";
import type { CallbackAppStatus, CallbackStatusSource } from "../../callbacks/relay.js";
import { sendJson } from "../../http/send-json.js";

/** Per callback app: pending, delivered and dead-lettered counts, and the last delivery error. */
export function callbacksPage(res: ServerResponse, source: CallbackStatusSource | undefined): void {
  const apps = Object.fromEntries(
    [...(source?.status() ?? new Map<string, CallbackAppStatus>())].map(([name, app]) => [
      name,
      {
        ...app,
        lastDeliveryError: app.lastDeliveryError && withIsoTime(app.lastDeliveryError),
        targets: app.targets.map((target) => ({
          ...target,
          lastDeliveryError: target.lastDeliveryError && withIsoTime(target.lastDeliveryError),
        })),
      },
    ]),
  );
  sendJson(res, 200, { errcode: 0, errmsg: "ok", apps });
}

function withIsoTime<T extends { readonly at: number }>(error: T): Omit<T, "at"> & { at: string } {
  return { ...error, at: new Date(error.at).toISOString() };
}
