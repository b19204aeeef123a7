/* Search result snippets from the page's prose: Sphinx takes the text of the whole main
   region, which here also holds the header buttons ("System Settings"), the print-only
   contents ("目录") and the diagrams' labels run together. Those are removed before Sphinx reads it. */
(() => {
  const NOT_PROSE = [
    ".bd-header-article", ".bd-sidebar-secondary", ".bd-toc", "nav", "footer",
    ".insider-diagram", ".insider-lab", ".prev-next-area", "svg", ".onlyprint",
  ].join(", ");
  const readText = Search.htmlToText;
  Search.htmlToText = (htmlString, anchor) => {
    const page = new DOMParser().parseFromString(htmlString, "text/html");
    page.querySelectorAll(NOT_PROSE).forEach((element) => element.remove());
    return readText(page.documentElement.outerHTML, anchor);
  };
})();
