// The openai SDK's OpenAIRealtimeWebSocket (it speaks only wss://) against Cadence:
//   node realtime_wss.mjs https://127.0.0.1:PORT/v1 [API_KEY]
// Prints every event it gets as one JSON line; exits 0 once session.updated arrives, 1 on an
// error or after 30 s. Trust a self-signed server with NODE_EXTRA_CA_CERTS=cert.pem.
import OpenAI from "openai";
import { OpenAIRealtimeWebSocket } from "openai/realtime/websocket";

const [baseURL, apiKey = "unused"] = process.argv.slice(2);
if (!baseURL) {
  console.error("usage: node realtime_wss.mjs https://HOST:PORT/v1 [API_KEY]");
  process.exit(2);
}
if (typeof globalThis.WebSocket === "undefined") {
  // Node.js before 22 (Debian's is 18) has no WebSocket of its own: the `ws` package's is
  // browser-compatible, and the SDK's OpenAIRealtimeWebSocket uses whatever is global.
  globalThis.WebSocket = (await import("ws")).WebSocket;
}

const client = new OpenAI({ apiKey, baseURL });
const rt = new OpenAIRealtimeWebSocket({ model: "gpt-realtime" }, client);
const done = (code) => { try { rt.close(); } catch {} process.exit(code); };
setTimeout(() => { console.error("timed out waiting for session.updated"); done(1); }, 30_000);

console.log(JSON.stringify({ type: "client.url", url: rt.url.toString() }));
rt.on("error", (err) => { console.error(`error: ${err.message}${err.cause ? ` (${err.cause.message ?? err.cause})` : ""}`); done(1); });
rt.on("event", (event) => {
  console.log(JSON.stringify(event));
  if (event.type === "session.created") {
    rt.send({ type: "session.update", session: { type: "realtime", instructions: "You are Nova, over TLS." } });
  }
  if (event.type === "session.updated") done(0);
});
