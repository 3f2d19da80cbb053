// A small namespace-aware element tree for the SOAP that cameras send, built on sax (a
// streaming parser with no dependencies; it expands no external entities). Elements are found
// by local name, because cameras disagree on prefixes and sometimes on namespaces. Values stay
// strings: nothing here turns "0123" into 123.
import sax from 'sax';
import { VigilError } from '../lib/errors.js';

/** More than any SOAP answer or ProbeMatches a camera sends; a larger body is not a camera's. */
export const MAX_XML_BYTES = 1024 * 1024;

export interface XmlElement {
  /** Local name (no prefix). */
  name: string;
  /** Namespace URI ('' when none). */
  ns: string;
  /** Attributes by local name. */
  attrs: Record<string, string>;
  children: XmlElement[];
  /** The element's own text (CDATA included), untrimmed. */
  text: string;
  /** Namespace prefixes in scope here (to resolve QName values such as "dn:NetworkVideoTransmitter"). */
  scope: Record<string, string>;
}

export function parseXml(xml: string): XmlElement {
  if (Buffer.byteLength(xml, 'utf8') > MAX_XML_BYTES) throw new VigilError('XML_INVALID', `XML larger than ${MAX_XML_BYTES} bytes`);
  const parser = sax.parser(true, { xmlns: true });
  const stack: XmlElement[] = [];
  let root: XmlElement | undefined;
  let failure: Error | undefined;
  parser.onerror = (err) => {
    // Cameras sometimes use a prefix they never declared; the local name is all we need.
    if (/Unbound namespace prefix/.test(err.message)) {
      parser.error = null as unknown as Error;
      parser.resume();
      return;
    }
    failure ??= err;
    parser.error = null as unknown as Error;
    parser.resume();
  };
  parser.onopentag = (tag) => {
    const t = tag as sax.QualifiedTag;
    const attrs: Record<string, string> = {};
    for (const a of Object.values(t.attributes)) {
      if (a.prefix === 'xmlns' || a.name === 'xmlns') continue;
      attrs[a.local || a.name] = a.value;
    }
    const el: XmlElement = { name: t.local || t.name, ns: t.uri ?? '', attrs, children: [], text: '', scope: { ...t.ns } };
    const parent = stack.at(-1);
    if (parent) parent.children.push(el);
    else if (!root) root = el;
    stack.push(el);
  };
  parser.onclosetag = () => {
    stack.pop();
  };
  const addText = (s: string): void => {
    const el = stack.at(-1);
    if (el) el.text += s;
  };
  parser.ontext = addText;
  parser.oncdata = addText;
  try {
    parser.write(xml).close();
  } catch (err) {
    failure ??= err as Error;
  }
  if (failure || !root) throw new VigilError('XML_INVALID', `not well-formed XML: ${(failure?.message ?? 'no root element').split('\n')[0]}`);
  return root;
}

/** The first direct child with this local name. */
export function child(el: XmlElement | undefined, name: string): XmlElement | undefined {
  return el?.children.find((c) => c.name === name);
}

export function children(el: XmlElement | undefined, name: string): XmlElement[] {
  return el ? el.children.filter((c) => c.name === name) : [];
}

/** Follows a path of local names through first children: path(env, 'Body', 'GetProfilesResponse'). */
export function path(el: XmlElement | undefined, ...names: string[]): XmlElement | undefined {
  let cur = el;
  for (const n of names) cur = child(cur, n);
  return cur;
}

/** The first element with this local name at any depth below `el` (depth-first). */
export function descendant(el: XmlElement | undefined, name: string): XmlElement | undefined {
  if (!el) return undefined;
  for (const c of el.children) {
    if (c.name === name) return c;
    const d = descendant(c, name);
    if (d) return d;
  }
  return undefined;
}

/** Trimmed text of an element, or null when the element is missing or empty. */
export function textOf(el: XmlElement | undefined): string | null {
  const t = el?.text.trim();
  return t ? t : null;
}

/** Resolves a QName value ("dn:NetworkVideoTransmitter") in the scope of `el`. */
export function resolveQName(el: XmlElement, qname: string): { ns: string; local: string } {
  const cut = qname.indexOf(':');
  if (cut < 0) return { ns: el.scope[''] ?? '', local: qname };
  return { ns: el.scope[qname.slice(0, cut)] ?? '', local: qname.slice(cut + 1) };
}

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' };

/** Escapes text for an XML element or attribute value. */
export function xmlEscape(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ESCAPES[c]!);
}
