/**
 * Building an Intl.NumberFormat costs far more than formatting with one, and
 * an email formats every line twice: one formatter per currency, kept.
 */
const formatters = new Map<string, { digits: number; format: Intl.NumberFormat }>();

function formatterFor(currency: string) {
  let formatter = formatters.get(currency);
  if (!formatter) {
    const digits = currencyDigits(currency);
    const format = new Intl.NumberFormat("en", {
      minimumFractionDigits: digits,
      maximumFractionDigits: digits,
    });
    formatter = { digits, format };
    // Currencies are few; a caller inventing codes cannot grow this without bound.
    if (formatters.size < 1_000) formatters.set(currency, formatter);
  }
  return formatter;
}

/** Minor units (cents) as customers read them: 1299 EUR → "12.99 EUR"; 1500 JPY → "1,500 JPY". */
export function formatMoney(minor: number, currency: string): string {
  const { digits, format } = formatterFor(currency);
  return `${format.format(minor / 10 ** digits)} ${currency}`;
}

/** The currency's minor-unit digits (ISO 4217, as Intl knows them): 2 for EUR, 0 for JPY, 3 for KWD. */
export function minorDigits(currency: string): number {
  return formatterFor(currency).digits;
}

function currencyDigits(currency: string): number {
  try {
    return (
      new Intl.NumberFormat("en", { style: "currency", currency }).resolvedOptions().maximumFractionDigits ??
      2
    );
  } catch {
    return 2;
  }
}
