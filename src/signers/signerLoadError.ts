/** A signer that cannot be used: a start-up error that names it. Never carries a key or a password. */
export class SignerLoadError extends Error {
  override name = 'SignerLoadError'
  constructor(
    readonly signerName: string,
    reason: string,
  ) {
    super(`signer "${signerName}": ${reason}`)
  }
}
