import { describe, expect, it } from 'vitest'
import { splitSocketHost } from './socketUrl.ts'

describe('splitSocketHost', () => {
  it("takes libpq's ?host=/dir out of the URL and returns it as the socket directory", () => {
    expect(splitSocketHost('postgres://app:pw@localhost:5433/txb?host=/var/run/postgresql&sslmode=disable')).toEqual({
      url: 'postgres://app:pw@localhost:5433/txb?sslmode=disable',
      socketDir: '/var/run/postgresql',
    })
    expect(splitSocketHost('postgresql://app@localhost/txb?host=%2Fcloudsql%2Fproj%3Aeu%3Adb')).toEqual({
      url: 'postgresql://app@localhost/txb',
      socketDir: '/cloudsql/proj:eu:db',
    })
  })

  it("moves libpq's ?port= into the URL, where postgres.js reads it for the socket file's name", () => {
    expect(splitSocketHost('postgres://app@localhost/txb?host=/tmp/pg&port=5433')).toEqual({ url: 'postgres://app@localhost:5433/txb', socketDir: '/tmp/pg' })
  })

  it('leaves TCP URLs, a host that is not a path, and strings that are not URLs as they are', () => {
    for (const url of ['postgres://app@db.internal:5432/txb', 'postgres://app@localhost/txb?host=db.internal', 'not a url'])
      expect(splitSocketHost(url)).toEqual({ url })
  })
})
