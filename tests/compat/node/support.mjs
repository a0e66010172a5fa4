// Helpers shared by the kafkajs compat tests.

import { setTimeout as sleep } from 'node:timers/promises'
import kafkajs from 'kafkajs'

export const BOOTSTRAP = process.env.KASKADE_BOOTSTRAP ?? '127.0.0.1:9092'
export const TIMEOUT_MS = Number(process.env.KASKADE_COMPAT_TIMEOUT ?? 30) * 1000

/** A kafkajs client for KASKADE_BOOTSTRAP with the suites' timeouts and retries. */
export function kafkaClient (clientId) {
  return new kafkajs.Kafka({
    clientId,
    brokers: BOOTSTRAP.split(','),
    logLevel: kafkajs.logLevel.ERROR,
    connectionTimeout: 5000,
    requestTimeout: TIMEOUT_MS,
    retry: { retries: 5, initialRetryTime: 200, maxRetryTime: 2000 },
  })
}

/** Polls `fn` until it returns a truthy value (errors count as "not yet"),
 * failing with the last result after `timeoutMs`. */
export async function waitFor (what, fn, timeoutMs = TIMEOUT_MS) {
  const deadline = Date.now() + timeoutMs
  let last
  for (;;) {
    try {
      const v = await fn()
      if (v) return v
      last = v
    } catch (e) {
      last = e
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what}: last ${last instanceof Error ? last.stack : JSON.stringify(last)}`)
    }
    await sleep(200)
  }
}
