# 《Istio & Envoy 内幕》 / Istio & Envoy Insider — build, translate, check.
# `make html` builds the Chinese edition; `make test` runs every check. `make help` lists all.

PYTHON      ?= python3
VENV        := .venv
BIN         := $(VENV)/bin
SPHINX      := $(BIN)/python -m sphinx
SPHINXOPTS  ?= -W --keep-going -n -q
BUILD       := _build
SITE        := $(BUILD)/site
LANGUAGES   := zh_CN en
DIAGRAMS    := _diagrams

.DEFAULT_GOAL := html
SITE_AUDIT  := tests/site-audit
.PHONY: help html html-en site pdf epub gettext update-po serve diagrams test system-deps print-deps bench bench-site site-audit-tools clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

# The virtual environment is made and filled on first use, and refreshed when a pin changes.
$(BIN)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

venv: $(BIN)/.installed

html: $(BIN)/.installed ## Build the Chinese edition into _build/site/zh_CN
	$(SPHINX) -b html $(SPHINXOPTS) -d $(BUILD)/doctrees/zh_CN -D language=zh_CN . $(SITE)/zh_CN
	@$(MAKE) --no-print-directory $(SITE)/index.html

html-en: $(BIN)/.installed ## Build the English edition into _build/site/en
	BOOK_LANGUAGE=en $(SPHINX) -b html $(SPHINXOPTS) -d $(BUILD)/doctrees/en -D language=en . $(SITE)/en
	@$(MAKE) --no-print-directory $(SITE)/index.html

site: html html-en ## Build both editions and the root page that picks one: _build/site
	@echo "Site: $(SITE)/index.html (zh_CN/ and en/)"

# PDF through LaTeX and xelatex; a character missing from the fonts stops the build.
pdf: $(BIN)/.installed print-deps ## Build the Chinese and English PDFs into _build/pdf
	@mkdir -p $(BUILD)/pdf
	for lang in $(LANGUAGES); do \
	  BOOK_LANGUAGE=$$lang $(SPHINX) -b latex $(SPHINXOPTS) -d $(BUILD)/doctrees/latex-$$lang \
	    -D language=$$lang . $(BUILD)/latex/$$lang || exit 1; \
	  (cd $(BUILD)/latex/$$lang && latexmk -pdfxe -interaction=nonstopmode -halt-on-error -quiet \
	    istio-envoy-insider-$$lang.tex >/dev/null) || { tail -40 $(BUILD)/latex/$$lang/istio-envoy-insider-$$lang.log; exit 1; }; \
	  cp $(BUILD)/latex/$$lang/istio-envoy-insider-$$lang.pdf $(BUILD)/pdf/; \
	done
	@ls -l $(BUILD)/pdf

epub: $(BIN)/.installed print-deps ## Build the Chinese and English EPUBs into _build/epub and run epubcheck
	@mkdir -p $(BUILD)/epub
	for lang in $(LANGUAGES); do \
	  BOOK_LANGUAGE=$$lang $(SPHINX) -b epub $(SPHINXOPTS) -d $(BUILD)/doctrees/epub-$$lang \
	    -D language=$$lang . $(BUILD)/epub-$$lang || exit 1; \
	  cp $(BUILD)/epub-$$lang/*.epub $(BUILD)/epub/istio-envoy-insider-$$lang.epub; \
	  $(EPUBCHECK) -q $(BUILD)/epub/istio-envoy-insider-$$lang.epub || exit 1; \
	done
	@ls -l $(BUILD)/epub

$(SITE)/index.html: _templates/site-root.html
	@mkdir -p $(SITE)
	cp _templates/site-root.html $@

gettext: $(BIN)/.installed ## Extract messages into _build/gettext (.pot, one per page)
	$(SPHINX) -b gettext $(SPHINXOPTS) -d $(BUILD)/doctrees/gettext . $(BUILD)/gettext

update-po: gettext ## Update locales/en/LC_MESSAGES/*.po from the templates (sphinx-intl)
	$(BIN)/sphinx-intl update -p $(BUILD)/gettext -l en -w 0 --no-obsolete

EDITION ?= zh_CN
serve: $(BIN)/.installed ## Live preview with sphinx-autobuild on 127.0.0.1:8000 (EDITION=en for English)
	BOOK_LANGUAGE=$(EDITION) $(BIN)/sphinx-autobuild --host 127.0.0.1 --port 8000 \
	  -D language=$(EDITION) -d $(BUILD)/doctrees/live-$(EDITION) \
	  --ignore "$(BUILD)/*" --ignore "$(DIAGRAMS)/node_modules/*" --ignore "*.mo" . $(BUILD)/live/$(EDITION)

# Diagrams: build both editions collecting what has no render, draw those with the pinned
# mermaid-cli and Debian's Chromium, then drop renders no page uses any more.
diagrams: $(BIN)/.installed $(DIAGRAMS)/node_modules/.installed ## Render new or changed diagrams into _diagrams/svg
	rm -rf $(BUILD)/diagrams-pending $(BUILD)/diagrams-scan
	for lang in $(LANGUAGES); do \
	  INSIDER_DIAGRAMS_PENDING=$(BUILD)/diagrams-pending BOOK_LANGUAGE=$$lang \
	    $(SPHINX) -b html -q -d $(BUILD)/diagrams-scan/doctrees-$$lang -D language=$$lang . $(BUILD)/diagrams-scan/$$lang || exit 1; \
	done
	PYTHONPATH=_ext $(BIN)/python -m insider.render $(BUILD)/diagrams-pending $(BUILD)/diagrams-scan/zh_CN/.diagram-keys $(BUILD)/diagrams-scan/en/.diagram-keys

$(DIAGRAMS)/node_modules/.installed: $(DIAGRAMS)/package.json $(DIAGRAMS)/package-lock.json
	command -v chromium >/dev/null || $(MAKE) system-deps
	cd $(DIAGRAMS) && PUPPETEER_SKIP_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error
	touch $@

# What the checks need from Debian: Chromium for the browser tests, msgfmt, CJK fonts; and
# for the PDF and EPUB editions, XeLaTeX with Chinese support, epubcheck and poppler.
SYSTEM_PACKAGES := chromium gettext fonts-noto-cjk default-jre-headless
PRINT_PACKAGES  := texlive-xetex texlive-lang-chinese latexmk fonts-noto-cjk epubcheck poppler-utils
# Debian ships epubcheck as a jar that needs binfmt support to run directly.
EPUBCHECK       := java -jar /usr/share/java/epubcheck.jar
define apt_install
	@missing=$$(for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "Installing: $$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi
endef
system-deps: ## Install the Debian packages the checks need (as root, when missing)
	$(call apt_install,$(SYSTEM_PACKAGES) $(PRINT_PACKAGES))

print-deps:
	$(call apt_install,$(PRINT_PACKAGES))

# axe-core, the Nu HTML checker and Lighthouse, pinned in tests/site-audit/package-lock.json.
$(SITE_AUDIT)/node_modules/.installed: $(SITE_AUDIT)/package.json $(SITE_AUDIT)/package-lock.json
	command -v chromium >/dev/null || $(MAKE) system-deps
	cd $(SITE_AUDIT) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

site-audit-tools: $(SITE_AUDIT)/node_modules/.installed

test: $(BIN)/.installed system-deps $(SITE_AUDIT)/node_modules/.installed ## Run every check (both editions, catalogs, browser, accessibility, planted faults)
	$(BIN)/python -m pytest tests

bench: $(BIN)/.installed ## Time clean and incremental builds of each edition
	$(BIN)/python tests/bench.py

# RUNS=1 for one Lighthouse run per page, PAGES=ch2-envoy/ for some pages, LIGHTHOUSE=0 to skip it.
bench-site: site $(SITE_AUDIT)/node_modules/.installed ## Serve the site with gzip; weight, Lighthouse, axe, vnu per page
	$(BIN)/python tests/bench_site.py $(SITE)

clean: ## Remove build output (keeps the virtual environment and the diagram renders)
	rm -rf $(BUILD)
