# Smart Factory IoT: `make run` (a living factory on http://127.0.0.1:8000) and `make test`.
# Everything else here is what those two call.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip -q --disable-pip-version-check
HOST   ?= 127.0.0.1
PORT   ?= 8000
# Base of the links in notification e-mails (the settings' default is http://127.0.0.1:8000);
# a server listening on all interfaces (HOST=0.0.0.0) is linked as 127.0.0.1.
SITE_URL ?= http://$(if $(filter 0.0.0.0,$(HOST)),127.0.0.1,$(HOST)):$(PORT)
PYTEST_ARGS ?=
# The suite runs in TEST_PROCESSES pytest processes (pytest-xdist, whole modules per process, so a
# module's server stack and browser start once); tests/xdist_env.py gives each process its own
# Redis databases and Mosquitto when service URLs are set. TEST_PROCESSES=1: one process.
TEST_PROCESSES ?= 2
TEST_PARALLEL := $(if $(filter-out 0 1,$(TEST_PROCESSES)),-n $(TEST_PROCESSES) --dist loadfile -p tests.xdist_env)
# The simulator `make run` starts (and `make simulate` runs against a server that is already up).
SIM_DEVICES ?= 12
SIM_RATE    ?= 1
SIM_VIA     ?= http
SIM_ARGS    ?=
# Daphne's access log (`-` for the console): the simulator alone makes a dozen requests a second.
WEB_ACCESS_LOG ?= /dev/null
# The MQTT bridge joins only when MQTT_URL points at a broker: it refuses to start without one.
PROCFILE := $(if $(MQTT_URL),Procfile.dev-mqtt,Procfile.dev)
# `make broker`: the device listener (the platform's is the next port, loopback only).
MQTT_PORT ?= 1883

.PHONY: run simulate test deps dev-deps mysql-driver assets migrate seed schedules broker certs mqtt-reconcile backup restore lint check-migrations check clean

# Web (Daphne), Celery beat, the simulator (and the MQTT bridge with MQTT_URL) under honcho.
# honcho gets no .env file: the one beside docker-compose.yml holds production settings.
run: deps assets mysql-driver migrate seed schedules mqtt-reconcile
	@echo "Smart Factory IoT on http://$(HOST):$(PORT)/  (admin: /admin/, API docs: /api/docs/). Ctrl-C stops."
	@echo "Processes: $(PROCFILE); simulator: $(SIM_DEVICES) devices, $(SIM_RATE) msg/s each via $(SIM_VIA)."
	HOST=$(HOST) WEB_PORT=$(PORT) SITE_URL=$(SITE_URL) WEB_ACCESS_LOG=$(WEB_ACCESS_LOG) SIM_DEVICES=$(SIM_DEVICES) SIM_RATE=$(SIM_RATE) SIM_VIA=$(SIM_VIA) \
	  PATH="$(abspath $(VENV))/bin:$$PATH" $(VENV)/bin/honcho --env /dev/null -f $(PROCFILE) start

simulate: deps mysql-driver migrate seed
	$(PY) manage.py simulate --devices $(SIM_DEVICES) --rate $(SIM_RATE) --via $(SIM_VIA) \
	  --url http://$(HOST):$(PORT) $(SIM_ARGS)

test: dev-deps assets mysql-driver
	$(PY) -m pytest $(TEST_PARALLEL) $(PYTEST_ARGS)

$(VENV)/bin/activate:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.deps: requirements.txt $(VENV)/bin/activate
	$(PIP) install -r requirements.txt
	touch $@

$(VENV)/.dev-deps: requirements.txt requirements-dev.txt edge/requirements.txt $(VENV)/bin/activate
	$(PIP) install -r requirements-dev.txt
	touch $@ $(VENV)/.deps

deps: $(VENV)/.deps
dev-deps: $(VENV)/.dev-deps

# The compiled MySQL driver is only needed (and only installed) when DATABASE_URL points at
# MySQL/MariaDB, so the embedded default works on a machine without MySQL headers.
mysql-driver:
	@case "$$DATABASE_URL" in mysql*) \
	  $(PY) -c "import MySQLdb" 2>/dev/null || $(PIP) install -r requirements-mysql.txt || { \
	    echo "Installing mysqlclient failed: install the headers first, e.g. 'apt-get install pkg-config libmariadb-dev build-essential'."; exit 1; } ;; \
	esac

static/vendor/.stamp: package.json package-lock.json
	@command -v npm >/dev/null || { echo "npm is needed for the dashboard's JavaScript: apt-get install npm (or install Node.js 18+)."; exit 1; }
	npm ci --no-audit --no-fund --silent
	mkdir -p static/vendor
	cp node_modules/uplot/dist/uPlot.iife.min.js node_modules/uplot/dist/uPlot.min.css node_modules/htmx.org/dist/htmx.min.js static/vendor/
	touch $@

assets: static/vendor/.stamp

migrate: deps
	$(PY) manage.py migrate --noinput

# --history: today's telemetry gaps are filled with simulated history, so OEE today starts believable.
seed: deps
	$(PY) manage.py seed_demo --history

schedules: migrate
	$(PY) manage.py sync_schedules

# Mosquitto in the foreground as production runs it (deploy/mosquitto.conf: no anonymous clients,
# per-device ACLs), data and the platform's broker credentials under var/mosquitto/. Then, in
# another shell: MQTT_URL=mqtt://127.0.0.1:$(MQTT_PORT) make run
broker: deps
	@command -v mosquitto >/dev/null || { echo "Mosquitto 2 is needed: apt-get install mosquitto"; exit 1; }
	$(PY) manage.py broker --port $(MQTT_PORT)

# A local CA and server certificate under var/certs (CERT_HOSTS: the names clients dial): `make broker`
# then also serves MQTT over TLS on MQTT_TLS_PORT (8883); clients trust var/certs/ca.crt (MQTT_CA_FILE).
CERT_HOSTS ?= localhost,127.0.0.1
certs: deps
	@command -v openssl >/dev/null || { echo "openssl is needed: apt-get install openssl"; exit 1; }
	$(PY) manage.py certs --hosts $(CERT_HOSTS)

# With MQTT_URL: the broker's clients and ACLs match the registry before anything connects.
mqtt-reconcile: migrate
	@if [ -n "$(MQTT_URL)" ]; then $(PY) manage.py mqtt_reconcile --wait 10 || { \
	  echo "MQTT_URL needs a broker the platform provisions: run 'make broker' (then MQTT_URL=mqtt://127.0.0.1:$(MQTT_PORT)),"; \
	  echo "or give the platform's credentials of your broker (README \"MQTT broker\")."; exit 1; }; fi

# README "Backup and restore": the database (one snapshot, while ingest runs), media and the broker's
# dynamic-security file into BACKUP_DIR; `make restore FROM=<dir>` into an empty database and media dir.
BACKUP_DIR ?= var/backups/$(shell date -u +%Y%m%dT%H%M%SZ)
backup: deps mysql-driver
	$(PY) manage.py backup --out $(BACKUP_DIR)

restore: deps mysql-driver
	@[ -n "$(FROM)" ] || { echo "Say which backup: make restore FROM=var/backups/<time>"; exit 1; }
	$(PY) manage.py restore --from $(FROM)

lint: dev-deps
	$(VENV)/bin/ruff check .

check-migrations: dev-deps
	$(PY) manage.py makemigrations --check --dry-run

check: dev-deps
	$(PY) manage.py check

clean:
	rm -rf $(VENV) node_modules static/vendor var

# Edge gateway demo (edge/README.md): a simulated OPC UA press and Modbus packer behind a real
# gateway, sending to the platform `make run` serves (start that first, in another terminal).
.PHONY: edge-demo
edge-demo: dev-deps
	$(PY) -m edge demo --platform http://$(HOST):$(PORT)
