// The page is served with a strict Content-Security-Policy (style-src 'self',
// no 'unsafe-inline'). xterm.js's DOM renderer styles itself in two ways that
// such a policy blocks: it writes CSS text into <style> elements it creates,
// and it adds style="..." attributes (true-colour cells, contrast fixes).
// The CSSOM is not subject to style-src, so this module routes both through
// it: a <style> that xterm creates becomes an inert <template> whose text
// feeds a constructed stylesheet adopted by the document, and
// setAttribute('style', v) becomes el.style.cssText = v. Nothing else in the
// page creates <style> elements or style attributes, so the change is safe
// globally. Must be installed before the terminal is created.

let installed = false;

function adopt(doc, sheet) {
  doc.adoptedStyleSheets = [...doc.adoptedStyleSheets, sheet];
}

function unadopt(doc, sheet) {
  doc.adoptedStyleSheets = doc.adoptedStyleSheets.filter((s) => s !== sheet);
}

function cssomStyleElement(doc, createElement) {
  const el = createElement.call(doc, 'template');
  el.dataset.cssomStyle = '';
  const sheet = new CSSStyleSheet();
  let text = '';
  adopt(doc, sheet);
  Object.defineProperty(el, 'textContent', {
    configurable: true,
    get() {
      return text;
    },
    set(value) {
      text = value == null ? '' : String(value);
      sheet.replaceSync(text);
    },
  });
  const remove = el.remove;
  el.remove = function () {
    unadopt(doc, sheet);
    return remove.call(this);
  };
  return el;
}

export function installCspShim() {
  if (installed) return;
  installed = true;
  if (typeof CSSStyleSheet === 'undefined' || !('adoptedStyleSheets' in Document.prototype)) {
    return; // old browser: the terminal still works, only without colours
  }
  try {
    new CSSStyleSheet().replaceSync('');
  } catch {
    return;
  }

  const createElement = Document.prototype.createElement;
  Document.prototype.createElement = function (tagName, options) {
    if (typeof tagName === 'string' && tagName.toLowerCase() === 'style') {
      return cssomStyleElement(this, createElement);
    }
    return createElement.call(this, tagName, options);
  };

  const setAttribute = Element.prototype.setAttribute;
  Element.prototype.setAttribute = function (name, value) {
    if (typeof name === 'string' && name.toLowerCase() === 'style' && this.style) {
      this.style.cssText = String(value);
      return undefined;
    }
    return setAttribute.call(this, name, value);
  };
}
