// A small namespace-aware XML reader and the escaping the simulator needs to write XML.
// Real cameras run gSOAP or similar and resolve prefixes properly, so the simulator does too:
// clients spell the same element `tds:GetDeviceInformation`, `<GetDeviceInformation xmlns=…>`
// or `SOAP-ENV:…`. DOCTYPEs are refused (no entity expansion from a network peer).

export interface XmlElement {
  /** Namespace URI ('' when none). */
  ns: string;
  local: string;
  /** Attributes by their name as written (`token`, `s:mustUnderstand`). */
  attrs: Record<string, string>;
  children: XmlElement[];
  /** Concatenated character data directly inside this element. */
  text: string;
  /** Prefix → namespace URI in scope here ('' is the default namespace). */
  scope: Record<string, string>;
}

export class XmlError extends Error {
  readonly code = 'XML_MALFORMED';
}

const XML_NS = 'http://www.w3.org/XML/1998/namespace';
const NAME = /^[A-Za-z_][\w.-]*(?::[A-Za-z_][\w.-]*)?$/;
const ATTR = /([^\s=/>]+)\s*=\s*("([^"]*)"|'([^']*)')/g;

export function decodeEntities(s: string): string {
  return s.replace(/&(#x[0-9a-fA-F]+|#\d+|lt|gt|amp|quot|apos);/g, (_m, e: string) => {
    if (e === 'lt') return '<';
    if (e === 'gt') return '>';
    if (e === 'amp') return '&';
    if (e === 'quot') return '"';
    if (e === 'apos') return "'";
    const code = e.startsWith('#x') ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10);
    return String.fromCodePoint(code);
  });
}

export function escapeXml(s: string): string {
  return s.replace(/[<>&"']/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[c]!);
}

function split(qname: string): { prefix: string; local: string } {
  const i = qname.indexOf(':');
  return i < 0 ? { prefix: '', local: qname } : { prefix: qname.slice(0, i), local: qname.slice(i + 1) };
}

/** Parses a document and returns its root element. Throws XmlError when it is not well-formed. */
export function parseXml(src: string): XmlElement {
  let i = 0;
  const stack: XmlElement[] = [];
  let root: XmlElement | null = null;
  const fail = (why: string): never => {
    throw new XmlError(`malformed XML at ${i}: ${why}`);
  };
  while (i < src.length) {
    const lt = src.indexOf('<', i);
    const textEnd = lt < 0 ? src.length : lt;
    if (textEnd > i) {
      const raw = src.slice(i, textEnd);
      const top = stack[stack.length - 1];
      if (top) top.text += decodeEntities(raw);
      else if (raw.trim() !== '') fail('text outside the root element');
    }
    if (lt < 0) break;
    i = lt;
    if (src.startsWith('<?', i)) {
      const end = src.indexOf('?>', i);
      if (end < 0) fail('unterminated processing instruction');
      i = end + 2;
    } else if (src.startsWith('<!--', i)) {
      const end = src.indexOf('-->', i);
      if (end < 0) fail('unterminated comment');
      i = end + 3;
    } else if (src.startsWith('<![CDATA[', i)) {
      const end = src.indexOf(']]>', i);
      if (end < 0) fail('unterminated CDATA');
      const top = stack[stack.length - 1];
      if (!top) fail('CDATA outside the root element');
      top!.text += src.slice(i + 9, end);
      i = end + 3;
    } else if (src.startsWith('<!', i)) {
      fail('DOCTYPE and declarations are not accepted');
    } else if (src.startsWith('</', i)) {
      const end = src.indexOf('>', i);
      if (end < 0) fail('unterminated end tag');
      const name = src.slice(i + 2, end).trim();
      const top = stack.pop();
      if (!top) fail(`end tag </${name}> without a start`);
      const { prefix, local } = split(name);
      if (local !== top!.local || (top!.scope[prefix] ?? '') !== top!.ns) fail(`</${name}> does not close <${top!.local}>`);
      i = end + 1;
    } else {
      // A start tag: find its end, skipping '>' inside quoted attribute values.
      let j = i + 1;
      let quote = '';
      for (; j < src.length; j++) {
        const c = src[j];
        if (quote) {
          if (c === quote) quote = '';
        } else if (c === '"' || c === "'") quote = c;
        else if (c === '>') break;
      }
      if (j >= src.length) fail('unterminated start tag');
      let body = src.slice(i + 1, j);
      const selfClosing = body.endsWith('/');
      if (selfClosing) body = body.slice(0, -1);
      const m = /^\s*([^\s/>]+)/.exec(body);
      if (!m || !NAME.test(m[1]!)) fail('bad element name');
      const qname = m![1]!;
      const attrs: Record<string, string> = {};
      const parentScope = stack[stack.length - 1]?.scope ?? { xml: XML_NS };
      const scope: Record<string, string> = { ...parentScope };
      const rest = body.slice(m![0].length);
      if (rest.replace(ATTR, '').trim() !== '') fail(`bad attributes in <${qname}>`);
      for (const a of rest.matchAll(ATTR)) {
        const name = a[1]!;
        const value = decodeEntities(a[3] ?? a[4] ?? '');
        if (name === 'xmlns') scope[''] = value;
        else if (name.startsWith('xmlns:')) scope[name.slice(6)] = value;
        else attrs[name] = value;
      }
      const { prefix, local } = split(qname);
      const ns = scope[prefix];
      if (ns === undefined && prefix !== '') fail(`undeclared prefix "${prefix}"`);
      const el: XmlElement = { ns: ns ?? '', local, attrs, children: [], text: '', scope };
      const parent = stack[stack.length - 1];
      if (parent) parent.children.push(el);
      else if (root) fail('more than one root element');
      else root = el;
      if (!selfClosing) stack.push(el);
      i = j + 1;
    }
  }
  if (stack.length) fail(`<${stack[stack.length - 1]!.local}> is not closed`);
  if (!root) fail('no root element');
  return root!;
}

/** The first child with this local name (and namespace, when given). */
export function child(el: XmlElement | undefined, local: string, ns?: string): XmlElement | undefined {
  return el?.children.find((c) => c.local === local && (ns === undefined || c.ns === ns));
}

/** Walks a path of local names (any namespace) from `el`. */
export function path(el: XmlElement | undefined, ...locals: string[]): XmlElement | undefined {
  let cur = el;
  for (const l of locals) cur = child(cur, l);
  return cur;
}

/** Trimmed text of the element at a path of local names, or undefined. */
export function textAt(el: XmlElement | undefined, ...locals: string[]): string | undefined {
  const found = path(el, ...locals);
  return found ? found.text.trim() : undefined;
}

/** Resolves a QName written in element content (`dn:NetworkVideoTransmitter`) in el's scope. */
export function resolveQName(el: XmlElement, qname: string): { ns: string | undefined; local: string } {
  const { prefix, local } = split(qname);
  return { ns: el.scope[prefix], local };
}
