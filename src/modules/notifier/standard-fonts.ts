/**
 * pdfkit reads and parses a standard font's metrics (its AFM file) again for
 * every document that uses the font: two thirds of an invoice's cost. The
 * metrics never change, so they are parsed once per process and each new
 * document gets its own font objects sharing them. This reaches into pdfkit's
 * internals (0.17: the document's font table and the StandardFont class);
 * a unit test renders an invoice both ways and compares the bytes.
 */
import PDFDocument from "pdfkit";

/** The fonts the invoice uses, in the order a plain document numbers them (F1 is its default font). */
export const standardFonts = ["Helvetica", "Helvetica-Bold"] as const;

interface DocumentFonts {
  _fontFamilies: Record<string, object>;
  _fontCount: number;
}

let parsed: Map<string, object> | undefined;

/** One StandardFont of each name, metrics parsed, never used in a document's output. */
function parsedFonts(): Map<string, object> {
  if (!parsed) {
    const probe = new PDFDocument({ autoFirstPage: false }) as unknown as PDFKit.PDFDocument & DocumentFonts;
    for (const name of standardFonts) probe.font(name);
    parsed = new Map(standardFonts.map((name) => [name, probe._fontFamilies[name]!]));
  }
  return parsed;
}

/**
 * A new document, as `new PDFDocument(options)` makes it with Helvetica as
 * its default font, but with the standard fonts' metrics parsed once.
 */
export function documentWithStandardFonts(options: PDFKit.PDFDocumentOptions): PDFKit.PDFDocument {
  const doc = new PDFDocument({ ...options, font: null as unknown as string, autoFirstPage: false });
  const fonts = doc as unknown as DocumentFonts;
  for (const [name, font] of parsedFonts()) {
    const { dictionary: _dictionary, embedded: _embedded, ...metrics } = font as Record<string, unknown>;
    fonts._fontFamilies[name] = Object.assign(Object.create(Object.getPrototypeOf(font)), metrics, {
      document: doc,
      id: `F${++fonts._fontCount}`,
    });
  }
  doc.font(standardFonts[0]);
  if (options.autoFirstPage !== false) doc.addPage();
  return doc;
}
