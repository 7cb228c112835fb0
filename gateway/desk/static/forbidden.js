/* The 403 page only needs the language switch. */
"use strict";
document.addEventListener("DOMContentLoaded", () => Desk.initLang());
