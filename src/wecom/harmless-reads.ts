// One read per family that changes nothing and needs no id: the doctor's proof that a secret may
// call its family's APIs. Families whose every read needs an id (a calendar, a meeting…) have none.
import type { Family } from "./api-families.js";

export interface HarmlessRead {
  readonly method: "GET" | "POST";
  /** With its query, without access_token. */
  readonly pathAndQuery: string;
  readonly body?: object;
}

const DAY_SECONDS = 86_400;

export function harmlessReadFor(family: Family, nowSeconds: number): HarmlessRead | undefined {
  const lastDay = { starttime: nowSeconds - DAY_SECONDS, endtime: nowSeconds };
  switch (family) {
    case "contacts":
      return { method: "POST", pathAndQuery: "/cgi-bin/user/list_id", body: { limit: 1 } };
    case "customer-contact":
      return { method: "GET", pathAndQuery: "/cgi-bin/externalcontact/get_follow_user_list" };
    case "kf":
      return { method: "POST", pathAndQuery: "/cgi-bin/kf/account/list", body: { offset: 0, limit: 1 } };
    case "msgaudit":
      return { method: "POST", pathAndQuery: "/cgi-bin/msgaudit/get_permit_user_list", body: {} };
    case "checkin":
      return { method: "POST", pathAndQuery: "/cgi-bin/checkin/getcorpcheckinoption", body: {} };
    case "approval":
      return { method: "GET", pathAndQuery: "/cgi-bin/oa/vacation/getcorpconf" };
    case "journal":
      return {
        method: "POST",
        pathAndQuery: "/cgi-bin/oa/journal/get_record_list",
        body: { ...lastDay, cursor: 0, limit: 1 },
      };
    case "meetingroom":
      return { method: "POST", pathAndQuery: "/cgi-bin/oa/meetingroom/list", body: {} };
    case "dial":
      return { method: "POST", pathAndQuery: "/cgi-bin/dial/get_dial_record", body: { ...lastDay, limit: 1 } };
    case "school":
      return { method: "GET", pathAndQuery: "/cgi-bin/school/department/list" };
    case "schedule":
    case "meeting":
    case "living":
    case "wedrive":
    case "wedoc":
      return undefined;
  }
}

/** For an agent of no family: its own app's details when it has an agentid, else the departments it sees. */
export function ownReadFor(agentid: number | undefined): HarmlessRead {
  return agentid === undefined
    ? { method: "GET", pathAndQuery: "/cgi-bin/department/list" }
    : { method: "GET", pathAndQuery: `/cgi-bin/agent/get?agentid=${agentid}` };
}
