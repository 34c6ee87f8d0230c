/**
 * Native currencies of well-known chains whose symbol is not ETH, by chain id. A table, not viem/chains: importing
 * viem's whole chain list cost 24 MB of RSS and a quarter of a second at start-up for this one lookup.
 */
const NOT_ETH = new Map<number, string>([
  [137, 'POL'], [80002, 'POL'], [56, 'BNB'], [97, 'tBNB'], [204, 'BNB'], [100, 'XDAI'], [10200, 'XDAI'], [43114, 'AVAX'],
  [43113, 'AVAX'], [250, 'FTM'], [42220, 'CELO'], [44787, 'CELO'], [1284, 'GLMR'], [1285, 'MOVR'], [25, 'CRO'],
  [5000, 'MNT'], [5003, 'MNT'], [2222, 'KAVA'], [1088, 'METIS'], [30, 'RBTC'], [8217, 'KAIA'], [146, 'S'], [80094, 'BERA'],
  [1329, 'SEI'], [14, 'FLR'], [40, 'TLOS'], [1666600000, 'ONE'], [42262, 'ROSE'], [7700, 'CANTO'], [2020, 'RON'],
])

/**
 * What amounts on a chain are shown in: the config's `currencySymbol`, else the symbol of a well-known chain with
 * that id (POL on Polygon, BNB on BNB Smart Chain, XDAI on Gnosis), else ETH. The dashboard showed ETH on every chain.
 */
export function currencySymbol(chain: { chainId: number; currencySymbol?: string | undefined }): string {
  return chain.currencySymbol ?? NOT_ETH.get(chain.chainId) ?? 'ETH'
}
