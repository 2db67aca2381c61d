/** GraphQL enums are the domain's lower-case states in upper case: PENDING is "pending". */
export function upperEnum<const T extends string>(
  values: readonly T[],
): { [K in T as Uppercase<K>]: { value: K } } {
  return Object.fromEntries(values.map((v) => [v.toUpperCase(), { value: v }])) as never;
}
