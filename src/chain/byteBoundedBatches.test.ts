import { describe, expect, it } from 'vitest'
import type { EIP1193RequestFn } from 'viem'
import { byteBoundedBatches, requestBytes } from './byteBoundedBatches.ts'

type Sent = { lane: number; method: string; tag: string; tick: number }

/**
 * Lanes that answer each call with its tag after a few milliseconds, and record which lane each call went to and
 * in which tick (a tick being what viem's batching, wait 0, puts in one HTTP request of a lane).
 */
function recordingLanes(answerAfterMs = 5) {
  const sent: Sent[] = []
  let lanes = 0
  let tick = 0
  const nextTick = () => setTimeout(() => tick++, 0)
  nextTick()
  const openLane = (): EIP1193RequestFn => {
    const lane = lanes++
    return (async ({ method, params }: { method: string; params?: unknown }) => {
      sent.push({ lane, method, tag: (params as string[])[0]!.slice(0, 6), tick })
      nextTick()
      await new Promise((r) => setTimeout(r, answerAfterMs))
      return (params as string[])[0]!.slice(0, 6)
    }) as EIP1193RequestFn
  }
  /** The HTTP requests as viem would make them: calls of one lane in one tick. */
  const batches = () => {
    const out = new Map<string, string[]>()
    for (const s of sent) out.set(`${s.lane}:${s.tick}`, [...(out.get(`${s.lane}:${s.tick}`) ?? []), s.tag])
    return [...out.values()]
  }
  return { openLane, sent, batches, lanes: () => lanes }
}

const raw = (tag: number, bytes: number) => `0x${tag.toString().padStart(4, '0')}${'ab'.repeat(Math.max(0, (bytes - 6) / 2))}`
const send = (request: EIP1193RequestFn, tag: number, bytes: number) =>
  request({ method: 'eth_sendRawTransaction', params: [raw(tag, bytes)] } as never) as Promise<string>

describe('byteBoundedBatches', () => {
  it('counts a call by its JSON', () => {
    const bytes = requestBytes({ method: 'eth_sendRawTransaction', params: [raw(1, 1000)] })
    expect(bytes).toBeGreaterThan(1000 + 'eth_sendRawTransaction'.length)
    expect(bytes).toBeLessThan(1100 + 'eth_sendRawTransaction'.length)
  })

  it('cuts the calls of one tick into pieces by bytes, in call order, each piece after the one before is answered', async () => {
    const lanes = recordingLanes()
    const request = byteBoundedBatches(lanes.openLane, { maxBytes: 3_500, maxRequests: 200 })
    const answers = await Promise.all(Array.from({ length: 7 }, (_, i) => send(request, i, 1_000)))
    expect(answers).toEqual(['0x0000', '0x0001', '0x0002', '0x0003', '0x0004', '0x0005', '0x0006'])
    expect(lanes.batches()).toEqual([
      ['0x0000', '0x0001', '0x0002'],
      ['0x0003', '0x0004', '0x0005'],
      ['0x0006'],
    ])
    // One lane, reused piece after piece: no two pieces were out at once.
    expect(lanes.lanes()).toBe(1)
  })

  it('cuts by count too, and sends a call over the limit on its own', async () => {
    const lanes = recordingLanes()
    const request = byteBoundedBatches(lanes.openLane, { maxBytes: 3_500, maxRequests: 2 })
    await Promise.all([send(request, 0, 100), send(request, 1, 100), send(request, 2, 100), send(request, 3, 10_000), send(request, 4, 100)])
    expect(lanes.batches()).toEqual([['0x0000', '0x0001'], ['0x0002'], ['0x0003'], ['0x0004']])
  })

  it('does not hold a later tick behind an earlier one: it goes out on another lane, at once', async () => {
    // Each piece takes 300 ms: on its own lane the later tick answers in about that, held behind the earlier
    // tick's two pieces in 900 ms (the margin is for a loaded machine).
    const lanes = recordingLanes(300)
    const request = byteBoundedBatches(lanes.openLane, { maxBytes: 3_500, maxRequests: 200 })
    const first = Promise.all(Array.from({ length: 6 }, (_, i) => send(request, i, 1_000)))
    await new Promise((r) => setTimeout(r, 10))
    const started = performance.now()
    expect(await send(request, 9, 100)).toBe('0x0009')
    expect(performance.now() - started).toBeLessThan(600)
    await first
    expect(lanes.sent.find((s) => s.tag === '0x0009')!.lane).not.toBe(lanes.sent[0]!.lane)
    // Both lanes are free again: the next tick takes one of them.
    await send(request, 10, 100)
    expect(lanes.lanes()).toBe(2)
  })

  it('passes a failure to its own call only', async () => {
    const request = byteBoundedBatches(() =>
      (async ({ params }: { params?: unknown }) => {
        if ((params as string[])[0] === 'bad') throw new Error('refused')
        return 'ok'
      }) as EIP1193RequestFn,
    )
    const answers = await Promise.allSettled(['good', 'bad', 'good'].map((p) => request({ method: 'x', params: [p] } as never)))
    expect(answers.map((a) => a.status)).toEqual(['fulfilled', 'rejected', 'fulfilled'])
  })
})
