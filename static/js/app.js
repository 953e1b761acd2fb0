// Keyward progressive enhancement. Every page works without this file. With it:
// - links marked data-dialog open their page's [data-dialog-content] in a native <dialog>;
//   forms inside it are submitted in the background, and errors or the show-once secret
//   replace the dialog's content, while a success redirect navigates the page itself;
// - copy buttons copy a secret to the clipboard;
// - times get the viewer's local time in their tooltip, beside the exact UTC time;
// - the small-screen Menu links become one disclosure button (aria-expanded);
// - menus (<details data-menu>: the user menu, key rows' menus) close on Escape (focus back on
//   their button), on a click elsewhere, when focus leaves them and when another opens;
// - passkey forms (form[data-passkey]) run the WebAuthn ceremony: they fetch a challenge from
//   their data-passkey-options address, let the browser answer it, and submit the answer in
//   their hidden "credential" field. (Without JavaScript no passkey can be used at all.)
// No inline scripts anywhere: the Content-Security-Policy forbids them.
"use strict";

(function () {
  var dialog = null;
  var opener = null;
  var afterClose = null;

  function localizeTimes(root) {
    var formatter = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
    root.querySelectorAll("time[datetime]").forEach(function (el) {
      var when = new Date(el.getAttribute("datetime"));
      if (!isNaN(when.getTime())) {
        // Keep the exact UTC time the server wrote, and add the viewer's own.
        if (!el.hasAttribute("data-utc")) el.setAttribute("data-utc", el.title || "");
        var utc = el.getAttribute("data-utc");
        var local = formatter.format(when) + " (your time)";
        el.title = utc ? utc + " · " + local : local;
      }
    });
  }

  function enableCopyButtons(root) {
    root.querySelectorAll("[data-copy]").forEach(function (button) {
      button.hidden = false;
    });
  }

  // One click selects the whole secret, so it can be copied by hand as well.
  function selectSecretsOnFocus(root) {
    root.querySelectorAll("textarea.secret").forEach(function (box) {
      box.addEventListener("focus", function () { box.select(); });
    });
  }

  function enhance(root) {
    localizeTimes(root);
    enableCopyButtons(root);
    selectSecretsOnFocus(root);
  }

  function copyFrom(button) {
    var input = document.getElementById(button.getAttribute("data-copy"));
    if (!input) return;
    var container = button.closest("[data-dialog-content]") || document;
    var status = container.querySelector("[data-copy-status]");
    function done(ok) {
      if (status) status.textContent = ok ? "Copied to the clipboard." : "Select the key and copy it with Ctrl+C.";
      button.textContent = ok ? "Copied" : "Copy";
    }
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(input.value).then(function () { done(true); }, function () { fallbackCopy(input, done); });
    } else {
      fallbackCopy(input, done);
    }
  }

  function fallbackCopy(input, done) {
    input.focus();
    input.select();
    var ok = false;
    try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
    done(ok);
  }

  function ensureDialog() {
    if (dialog) return dialog;
    dialog = document.createElement("dialog");
    dialog.className = "modal";
    document.body.appendChild(dialog);
    dialog.addEventListener("close", function () {
      // Never leave a secret in the page once the dialog is gone.
      var wasShowOnce = dialog.querySelector("[data-show-once]");
      var done = dialog.querySelector("[data-dialog-done]");
      dialog.innerHTML = "";
      var target = afterClose || (wasShowOnce && done ? done.getAttribute("href") : null);
      afterClose = null;
      if (target) {
        window.location.assign(target);
      } else if (opener && document.contains(opener)) {
        opener.focus();
      }
    });
    dialog.addEventListener("click", function (event) {
      var close = event.target.closest("[data-dialog-close]");
      if (close) {
        event.preventDefault();
        dialog.close();
        return;
      }
      var doneLink = event.target.closest("[data-dialog-done]");
      if (doneLink) {
        event.preventDefault();
        afterClose = doneLink.getAttribute("href");
        dialog.close();
        return;
      }
      var copy = event.target.closest("[data-copy]");
      if (copy) copyFrom(copy);
    });
    dialog.addEventListener("submit", onDialogSubmit);
    return dialog;
  }

  function showContent(html, fallbackUrl) {
    var doc = new DOMParser().parseFromString(html, "text/html");
    var content = doc.querySelector("[data-dialog-content]");
    if (!content) {
      window.location.assign(fallbackUrl);
      return;
    }
    var d = ensureDialog();
    d.innerHTML = "";
    var node = document.importNode(content, true);
    d.appendChild(node);
    var labelledBy = node.getAttribute("aria-labelledby");
    if (labelledBy) d.setAttribute("aria-labelledby", labelledBy);
    // The header's close button exists only in a dialog: a plain page has its Cancel link.
    d.querySelectorAll(".dialog-close").forEach(function (button) { button.hidden = false; });
    if (!d.open) d.showModal();
    enhance(d);
    // Focus goes where the person acts first; a destructive confirmation (a .danger button)
    // starts on its Cancel, so a second Enter never deletes or revokes by accident.
    var focus = d.querySelector("[aria-invalid=true]")
      || d.querySelector("[data-copy]:not([hidden])")
      || d.querySelector("input:not([type=hidden]):not([readonly]), select, textarea:not([readonly])")
      || (d.querySelector("form button.danger") && d.querySelector(".form-actions [data-dialog-close]"))
      || d.querySelector("form button, form a[href], .form-actions a[href]")
      || d.querySelector("button, a[href]");
    if (focus) focus.focus();
  }

  function openDialog(link) {
    // A dialog opened from a row menu returns focus to the menu's button: the link itself
    // is hidden once the menu closes.
    var menu = link.closest("details.row-menu");
    if (menu) {
      menu.open = false;
      opener = menu.querySelector("summary");
    } else {
      opener = link;
    }
    fetch(link.href, { credentials: "same-origin" })
      .then(function (response) {
        if (response.redirected || !response.ok) {
          window.location.assign(link.href);
          return null;
        }
        return response.text();
      })
      .then(function (html) {
        if (html !== null) showContent(html, link.href);
      })
      .catch(function () { window.location.assign(link.href); });
  }

  function onDialogSubmit(event) {
    var form = event.target;
    // Read attributes, not properties: a field named "action" (the key form has them)
    // shadows form.action.
    var method = (form.getAttribute("method") || "get").toLowerCase();
    var action = form.getAttribute("action") || window.location.pathname;
    if (!(form instanceof HTMLFormElement) || method !== "post") return;
    event.preventDefault();
    var buttons = form.querySelectorAll("button[type=submit]");
    buttons.forEach(function (b) { b.disabled = true; });
    fetch(action, {
      method: "POST",
      body: new URLSearchParams(new FormData(form)),
      credentials: "same-origin",
      redirect: "manual",
      headers: { "X-Keyward-Dialog": "1" }
    })
      .then(function (response) {
        // Not done: the person must confirm it's them (or sign in again) first.
        var detour = response.headers.get("X-Keyward-Navigate");
        if (detour) {
          window.location.assign(detour);
          return null;
        }
        if (response.type === "opaqueredirect" || (response.status >= 300 && response.status < 400)) {
          // Success: let the page itself load the next page, which shows the flash message.
          var back = form.querySelector("input[name=return_to]");
          afterClose = (back && back.value) || window.location.pathname + window.location.search;
          dialog.close();
          return null;
        }
        return response.text().then(function (html) { showContent(html, action); });
      })
      .catch(function () {
        buttons.forEach(function (b) { b.disabled = false; });
      });
  }

  document.addEventListener("click", function (event) {
    if (event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey) return;
    var link = event.target.closest("a[data-dialog]");
    if (link && typeof HTMLDialogElement === "function") {
      event.preventDefault();
      openDialog(link);
      return;
    }
    var copy = event.target.closest("[data-copy]");
    if (copy && !(dialog && dialog.contains(copy))) copyFrom(copy);
  });

  // The Menu of small screens: without JavaScript two links open (#nav) and close it through
  // :target; here one button that says whether it is open.
  var navButton = null;
  var nav = null;

  function setNavOpen(open, returnFocus) {
    if (!navButton) return;
    nav.classList.toggle("is-open", open);
    navButton.setAttribute("aria-expanded", open ? "true" : "false");
    if (!open && returnFocus) navButton.focus();
  }

  function enhanceNavToggle() {
    nav = document.getElementById("nav");
    var links = document.querySelectorAll("[data-nav-toggle]");
    if (!nav || links.length === 0) return;
    navButton = document.createElement("button");
    navButton.type = "button";
    navButton.className = "nav-toggle";
    navButton.textContent = "Menu";
    navButton.setAttribute("aria-controls", "nav");
    links[0].parentNode.insertBefore(navButton, links[0]);
    links.forEach(function (link) { link.remove(); });
    navButton.addEventListener("click", function () {
      setNavOpen(navButton.getAttribute("aria-expanded") !== "true", false);
    });
    // A page opened at #nav (the link was followed before this ran) starts open.
    setNavOpen(window.location.hash === "#nav", false);
  }

  function closeMenus(except) {
    document.querySelectorAll("details[data-menu][open]").forEach(function (menu) {
      if (menu !== except) menu.open = false;
    });
  }

  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape" || (dialog && dialog.open)) return;
    var menu = event.target.closest && event.target.closest("details[data-menu][open]");
    if (menu) {
      menu.open = false;
      menu.querySelector("summary").focus();
      return;
    }
    if (navButton && navButton.getAttribute("aria-expanded") === "true"
        && (event.target === navButton || nav.contains(event.target))) {
      setNavOpen(false, true);
    }
  });

  document.addEventListener("click", function (event) {
    closeMenus(event.target.closest("details[data-menu]"));
  });

  // One menu open at a time, however it was opened (keyboard included).
  document.addEventListener("toggle", function (event) {
    var menu = event.target;
    if (menu.matches && menu.matches("details[data-menu]") && menu.open) closeMenus(menu);
  }, true);

  // Tabbing out of an open menu closes it, as a click elsewhere does.
  document.addEventListener("focusout", function (event) {
    var menu = event.target.closest && event.target.closest("details[data-menu][open]");
    if (menu && event.relatedTarget && !menu.contains(event.relatedTarget)) menu.open = false;
  });


  // Passkeys. WebAuthn speaks ArrayBuffers; the server speaks base64url in JSON.
  function fromBase64Url(text) {
    var base64 = text.replace(/-/g, "+").replace(/_/g, "/");
    while (base64.length % 4) base64 += "=";
    var binary = atob(base64);
    var bytes = new Uint8Array(binary.length);
    for (var i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
    return bytes.buffer;
  }

  function toBase64Url(buffer) {
    if (!buffer) return null;
    var bytes = new Uint8Array(buffer);
    var binary = "";
    for (var i = 0; i < bytes.length; i++) binary += String.fromCharCode(bytes[i]);
    return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function decodeCredentialIds(list) {
    (list || []).forEach(function (credential) { credential.id = fromBase64Url(credential.id); });
  }

  // The browser's answer, in the JSON the server reads.
  function credentialJson(credential, creating) {
    var r = credential.response;
    var response = creating
      ? { attestationObject: toBase64Url(r.attestationObject), clientDataJSON: toBase64Url(r.clientDataJSON) }
      : {
          authenticatorData: toBase64Url(r.authenticatorData),
          clientDataJSON: toBase64Url(r.clientDataJSON),
          signature: toBase64Url(r.signature),
          userHandle: toBase64Url(r.userHandle)
        };
    return JSON.stringify({
      id: credential.id,
      rawId: toBase64Url(credential.rawId),
      type: credential.type,
      extensions: credential.getClientExtensionResults ? credential.getClientExtensionResults() : {},
      response: response
    });
  }

  // The message beside the form's button, or beside the field it is about (which then names
  // it in aria-describedby, as a field error written by the server does).
  function showPasskeyError(form, message, field) {
    var box = form.querySelector("[data-passkey-error]");
    form.querySelectorAll("[data-passkey-invalid]").forEach(function (input) {
      input.removeAttribute("aria-invalid");
      input.removeAttribute("data-passkey-invalid");
      var described = (input.getAttribute("aria-describedby") || "").replace(box.id, "").trim();
      if (described) input.setAttribute("aria-describedby", described); else input.removeAttribute("aria-describedby");
    });
    var input = field && form.elements[field];
    if (input && message) {
      input.setAttribute("aria-invalid", "true");
      input.setAttribute("data-passkey-invalid", "");
      input.setAttribute("aria-describedby", ((input.getAttribute("aria-describedby") || "") + " " + box.id).trim());
      input.focus();
    }
    box.textContent = message;
  }

  function runPasskeyCeremony(form) {
    var creating = form.getAttribute("data-passkey") === "create";
    var button = form.querySelector("button[type=submit]");
    var body = new URLSearchParams(new FormData(form));
    body.delete("credential");
    showPasskeyError(form, "");
    button.disabled = true;
    fetch(form.getAttribute("data-passkey-options"), {
      method: "POST",
      body: body,
      credentials: "same-origin",
      headers: { Accept: "application/json" }
    }).then(function (response) {
      // Sent elsewhere (to confirm it's you, or to sign in again): go there.
      if (response.redirected) {
        window.location.assign(response.url);
        return null;
      }
      if ((response.headers.get("content-type") || "").indexOf("json") < 0) throw new Error("not JSON");
      return response.json().then(function (data) {
        if (!response.ok) throw { shown: data.error, field: data.field };
        var options = data.publicKey;
        options.challenge = fromBase64Url(options.challenge);
        if (creating) {
          options.user.id = fromBase64Url(options.user.id);
          decodeCredentialIds(options.excludeCredentials);
          return navigator.credentials.create({ publicKey: options });
        }
        decodeCredentialIds(options.allowCredentials);
        return navigator.credentials.get({ publicKey: options });
      });
    }).then(function (credential) {
      if (!credential) return;
      form.elements.credential.value = credentialJson(credential, creating);
      form.submit();
    }).catch(function (problem) {
      button.disabled = false;
      if (problem && problem.shown) {
        showPasskeyError(form, problem.shown, problem.field);
      } else if (problem && problem.name === "InvalidStateError") {
        showPasskeyError(form, "This device has a passkey for your account already.");
      } else if (problem && problem.name === "NotAllowedError") {
        showPasskeyError(form, "No passkey was used: the request was cancelled or timed out. Try again.");
      } else {
        showPasskeyError(form, "Your browser could not use a passkey here. Try again, or use a code.");
      }
    });
  }

  function enablePasskeys() {
    var supported = window.PublicKeyCredential && navigator.credentials;
    document.querySelectorAll("form[data-passkey]").forEach(function (form) {
      if (!supported) {
        showPasskeyError(form, "This browser does not support passkeys.");
        form.querySelector("button[type=submit]").disabled = true;
      }
      form.hidden = false;
      // A person's submission starts a ceremony; its answer is sent with form.submit(), which
      // fires no submit event. (An answer the browser restored with the page is never reused.)
      form.addEventListener("submit", function (event) {
        event.preventDefault();
        form.elements.credential.value = "";
        if (supported) runPasskeyCeremony(form);
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    enhanceNavToggle();
    enhance(document);
    enablePasskeys();
  });
})();
