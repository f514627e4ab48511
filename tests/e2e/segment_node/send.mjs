// Sends with the real @segment/analytics-node client, as an application would:
// TRACKS track calls (event names Viewed/Added/Bought in turn), IDENTIFIES
// identify calls, PAGES page calls, then closeAndFlush(). Prints one JSON line:
// {"ok": n, "failed": n, "errors": [...]}.
// Environment: HOST (the server's base URL), WRITE_KEY, TRACKS, IDENTIFIES, PAGES,
// FLUSH_AT (events per batch), TIMEOUT_MS (the client's request timeout).
import { Analytics } from '@segment/analytics-node'

const env = process.env
const analytics = new Analytics({
  writeKey: env.WRITE_KEY,
  host: env.HOST,
  flushAt: Number(env.FLUSH_AT || 20),
  flushInterval: 200,
  maxRetries: 5,
  httpRequestTimeout: Number(env.TIMEOUT_MS || 10000),
})
const names = ['Viewed', 'Added', 'Bought']
let ok = 0
let failed = 0
const errors = []
const done = (err) => {
  if (err) {
    failed += 1
    if (errors.length < 5) errors.push(String(err))
  } else {
    ok += 1
  }
}
for (let i = 0; i < Number(env.TRACKS || 0); i++) {
  analytics.track({ userId: `u${i % 7}`, event: names[i % 3], properties: { i } }, done)
}
for (let i = 0; i < Number(env.IDENTIFIES || 0); i++) {
  analytics.identify({ userId: `u${i}`, traits: { plan: 'pro' } }, done)
}
for (let i = 0; i < Number(env.PAGES || 0); i++) {
  analytics.page({ anonymousId: `a${i}`, name: 'Home', properties: { path: '/' } }, done)
}
await analytics.closeAndFlush({ timeout: 60000 })
console.log(JSON.stringify({ ok, failed, errors }))
