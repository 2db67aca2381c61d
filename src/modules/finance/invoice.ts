/** Finance's decisions, free of I/O. */

/** INV-000042: what customers and accountants read on the PDF. */
export function invoiceNumber(n: number): string {
  return `INV-${String(n).padStart(6, "0")}`;
}

export interface CapturedPayment {
  paymentReference: string;
  amount: number;
  currency: string;
}

/** OrderConfirmed carries the captured payment; an invoice is issued for exactly that amount. */
export function capturedPayment(payload: Record<string, unknown>): CapturedPayment {
  const { paymentReference, amount, currency } = payload;
  if (typeof paymentReference !== "string" || typeof amount !== "number" || typeof currency !== "string") {
    throw new Error("OrderConfirmed without a captured payment (paymentReference, amount, currency)");
  }
  return { paymentReference, amount, currency };
}
