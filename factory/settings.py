"""Smart Factory IoT settings.

Every deploy-specific value comes from the environment (see the table in README.md). The
defaults are the embedded developer stack: SQLite under ``var/``, an in-memory channel layer, a
local-memory cache, eager Celery and console e-mail. ``DATABASE_URL``, ``REDIS_URL``,
``CELERY_BROKER_URL`` and ``MQTT_URL`` switch to the real services.
"""

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

from factory import logs, mosquitto
from factory.env import env_bool, env_int, env_list, env_networks, env_secret, env_str, env_url

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("VAR_DIR", str(BASE_DIR / "var")))

DEBUG = env_bool("DEBUG", True)

SECRET_KEY = env_secret("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set and DEBUG=false. Set SECRET_KEY (or SECRET_KEY_FILE) to a long "
            "random string, e.g. `python -c 'import secrets; print(secrets.token_urlsafe(50))'`."
        )
    SECRET_KEY = "django-insecure-development-only-key-do-not-use-in-production-0123456789"

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"] if DEBUG else [])
if not DEBUG and not ALLOWED_HOSTS:
    raise ImproperlyConfigured("ALLOWED_HOSTS is empty and DEBUG=false: list the host names this site answers to.")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "daphne",
    "factory.apps.FactoryAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework_simplejwt",
    "rest_framework_simplejwt.token_blacklist",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "guardian",
    "axes",
    "channels",
    "django_celery_beat",
    "anymail",
    "import_export",  # the order admin's import pages (production.admin)
    "auditlog",
    "accounts",
    "devices",
    "alerts",
    "analytics",
    "firmware",
    "commands",
    "anomaly",
    "production",
    "simulator",
    "audit",  # after auditlog: its admin replaces auditlog's
    "factory.apps.FactoryConfig",
    "live",  # the live bus: after the apps whose signals its receivers connect (live/apps.py)
]

MIDDLEWARE = [
    "factory.clientip.ClientAddressMiddleware",  # first: everything after reads one client address
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # After WhiteNoise (static files need no policy), before everything that answers with a page.
    "factory.csp.ContentSecurityPolicyMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "audit.middleware.AuditMiddleware",  # who and from where, for every audit entry of the request
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Axes must come last: it turns a lockout raised during authentication into a response.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "factory.urls"
ASGI_APPLICATION = "factory.asgi.application"
WSGI_APPLICATION = None

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "factory.context_processors.site",
            ],
        },
    },
]

# Database -------------------------------------------------------------------------------------
DATABASE_URL = env_url("DATABASE_URL", schemes=("mysql", "sqlite"))
if DATABASE_URL:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 60))}
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
else:
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": VAR_DIR / "factory.sqlite3"}}

if DATABASES["default"]["ENGINE"] == "django.db.backends.mysql":
    # utf8mb4 with one collation everywhere: a mismatch breaks guardian's joins with
    # "(1267) Illegal mix of collations". Strict mode turns silent truncation into errors.
    DATABASES["default"]["OPTIONS"] = {
        "charset": "utf8mb4",
        "collation": "utf8mb4_unicode_ci",
        "init_command": "SET sql_mode='STRICT_TRANS_TABLES'",
        "isolation_level": "read committed",
        "connect_timeout": 5,
    }
    DATABASES["default"]["TEST"] = {"CHARSET": "utf8mb4", "COLLATION": "utf8mb4_unicode_ci"}
else:
    # WAL lets the dashboard read while the simulator writes; IMMEDIATE transactions take the
    # write lock up front so concurrent writers wait (timeout) instead of failing with "locked".
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Cache, channel layer -------------------------------------------------------------------------
REDIS_URL = env_url("REDIS_URL", schemes=("redis", "rediss", "unix"))
if REDIS_URL:
    # Short socket timeouts: a hung Redis must degrade the cache (and show in /healthz), not stall requests.
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "OPTIONS": {"socket_timeout": 2, "socket_connect_timeout": 2},
        }
    }
    # Redis pub/sub by default: a group send is one PUBLISH and a receiving process gets it pushed,
    # where the core layer spent about ten commands per event (Lua group send, BZPOPMIN, backup
    # clean-up); the latency and CPU it saved are in docs/benchmarks.md.
    # Live events are fire-and-forget either way (Redis keeps nothing on disk here; browsers catch
    # up over REST after a reconnect). CHANNEL_LAYER=core selects channels_redis' original layer, whose
    # per-channel capacity and expiry nothing here relies on.
    CHANNEL_LAYER = env_str("CHANNEL_LAYER", "pubsub")
    if CHANNEL_LAYER not in ("pubsub", "core"):
        raise ImproperlyConfigured(f"CHANNEL_LAYER must be 'pubsub' (the default) or 'core', not {CHANNEL_LAYER!r}.")
    # redis-py 8 reads with a 5 s socket timeout by default, the same 5 s that the core layer blocks
    # in BZPOPMIN: an idle consumer's receive then failed with "Timeout reading" and its WebSocket
    # closed with 1011. Reads get more time than the blocking pop.
    layer_config = {
        "hosts": [{"address": REDIS_URL, "socket_timeout": 15}],
        "prefix": env_str("CHANNELS_PREFIX", "factory"),
    }
    if CHANNEL_LAYER == "core":
        layer_backend = "channels_redis.core.RedisChannelLayer"
        layer_config["capacity"] = 1000
    else:
        layer_backend = "channels_redis.pubsub.RedisPubSubChannelLayer"
    CHANNEL_LAYERS = {"default": {"BACKEND": layer_backend, "CONFIG": layer_config}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# Celery ---------------------------------------------------------------------------------------
CELERY_BROKER_URL = env_url("CELERY_BROKER_URL", schemes=("redis", "rediss", "amqp", "amqps"))
CELERY_TASK_ALWAYS_EAGER = CELERY_BROKER_URL is None
CELERY_TASK_EAGER_PROPAGATES = True
if CELERY_BROKER_URL is None:
    CELERY_BROKER_URL = "memory://"
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Redis hands an unacknowledged task (a worker died, or it holds a retry's countdown) to another
# worker after this long. It must outlast the longest countdown plus the longest task, or a task
# still waiting or running is handed out twice (factory/tests/test_celery_contract.py checks).
# A worker's death is handled sooner by the sweepers (e.g. alerts.tasks.sweep_deliveries).
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 1800, minimum=60)}
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 60, minimum=1)
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 90, minimum=1)
CELERY_BEAT_SCHEDULER = "factory.beat:FactoryScheduler"  # django-celery-beat's, loud (factory/beat.py)
CELERY_TIMEZONE = "UTC"
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

# MQTT -----------------------------------------------------------------------------------------
# The platform's listener (the bridge, the platform's commands, broker provisioning). Devices use
# the device listener, MQTT_DEVICE_URL, where the broker makes each client's id its username.
MQTT_URL = env_url("MQTT_URL", schemes=("mqtt", "mqtts"))
MQTT_DEVICE_URL = env_url("MQTT_DEVICE_URL", schemes=("mqtt", "mqtts")) or MQTT_URL
# Broker credentials (README "MQTT broker"): the platform administers Mosquitto's dynamic-security
# plugin and publishes commands; the bridge only reads telemetry. Without MQTT_PLATFORM_PASSWORD the
# platform does not provision the broker. Usernames contain '@', which no device uid may.
MQTT_PLATFORM_USERNAME = env_str("MQTT_PLATFORM_USERNAME", "platform@factory")
MQTT_PLATFORM_PASSWORD = env_secret("MQTT_PLATFORM_PASSWORD", "")
MQTT_BRIDGE_USERNAME = env_str("MQTT_BRIDGE_USERNAME", "bridge@factory")
MQTT_BRIDGE_PASSWORD = env_secret("MQTT_BRIDGE_PASSWORD", "")
# The CA that signed the broker's certificate, for mqtts:// (the bridge, the platform, the simulator);
# unset: the system's trusted CAs. `make certs` makes a local CA: var/certs/ca.crt.
MQTT_CA_FILE = env_str("MQTT_CA_FILE")
MQTT_ADMIN_TIMEOUT = env_int("MQTT_ADMIN_TIMEOUT", 5, minimum=1)  # seconds for one broker command
MQTT_BROKER_DIR = VAR_DIR / "mosquitto"  # `make broker` (factory/mosquitto.py)
_local_broker = mosquitto.listeners(MQTT_BROKER_DIR)
if _local_broker and MQTT_URL in _local_broker.values() and not MQTT_PLATFORM_PASSWORD:
    # MQTT_URL names the broker `make broker` runs: the platform takes its listener and the
    # credentials it created; the simulator takes the device listener.
    MQTT_URL, MQTT_DEVICE_URL = _local_broker["platform_url"], _local_broker["device_url"]
    MQTT_PLATFORM_PASSWORD = mosquitto.read_secret(MQTT_BROKER_DIR, mosquitto.PLATFORM_SECRET) or ""
    MQTT_BRIDGE_PASSWORD = MQTT_BRIDGE_PASSWORD or mosquitto.read_secret(MQTT_BROKER_DIR, mosquitto.BRIDGE_SECRET) or ""

# E-mail ---------------------------------------------------------------------------------------
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_secret("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_BACKEND = env_str(
    "EMAIL_BACKEND",
    "django.core.mail.backends.smtp.EmailBackend"
    if env_str("EMAIL_HOST")
    else "factory.mail.SummaryEmailBackend",  # one line on the console, the full text in VAR_DIR/mail/
)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "Smart Factory IoT <factory@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
# django-anymail: every ANYMAIL_<NAME> variable becomes ANYMAIL["<NAME>"], e.g.
# EMAIL_BACKEND=anymail.backends.postmark.EmailBackend ANYMAIL_POSTMARK_SERVER_TOKEN=...
ANYMAIL = {key.removeprefix("ANYMAIL_"): value for key, value in os.environ.items() if key.startswith("ANYMAIL_")}

# Accounts, passwords, login throttling --------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
    "guardian.backends.ObjectPermissionBackend",
]
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.BCryptSHA256PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.ScryptPasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

AXES_ENABLED = env_bool("AXES_ENABLED", True)
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("LOGIN_LOCKOUT_MINUTES", 15, minimum=1))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "accounts.lockout.lockout_response"
AXES_VERBOSE = False
AXES_CLIENT_IP_CALLABLE = "factory.clientip.client_ip"
# Forwarded-for headers are believed only from these peers (CIDRs): the reverse proxy. Empty (the
# default, and `make run`): the TCP peer is the client. docker-compose.yml sets its own network.
TRUSTED_PROXIES = env_networks("TRUSTED_PROXIES")

ANONYMOUS_USER_NAME = None  # guardian: no anonymous user row (nobody anonymous sees any plant)
GUARDIAN_RAISE_403 = False

# Device tokens are HMAC-SHA256 hashed with this key. It defaults to SECRET_KEY; give it its own
# value in production so that SECRET_KEY can be rotated without re-provisioning every device.
DEVICE_TOKEN_HASH_KEY = env_secret("DEVICE_TOKEN_HASH_KEY", SECRET_KEY)
# Zero-touch provisioning (POST /api/v1/device/provision/): calls per minute per key and per address.
# A fleet behind one NAT shares an address: 1,000 devices pass in under 4 minutes at the defaults.
PROVISION_RATE_PER_KEY = env_int("PROVISION_RATE_PER_KEY", 600, minimum=0)
PROVISION_RATE_PER_ADDRESS = env_int("PROVISION_RATE_PER_ADDRESS", 300, minimum=0)
DEVICE_EXPECTED_INTERVAL = env_int("DEVICE_EXPECTED_INTERVAL", 60, minimum=1)
# API keys of service accounts (Authorization: Api-Key <key>): lifetime when none is given.
API_KEY_DEFAULT_DAYS = env_int("API_KEY_DEFAULT_DAYS", 365, minimum=1)

# Telemetry (CONTRACT.md) --------------------------------------------------------------------
TELEMETRY_MAX_BATCH = env_int("TELEMETRY_MAX_BATCH", 1000, minimum=1)
TELEMETRY_MAX_BODY_BYTES = env_int("TELEMETRY_MAX_BODY_BYTES", 2 * 1024 * 1024, minimum=1024)
TELEMETRY_RATE_LIMIT = env_int("TELEMETRY_RATE_LIMIT", 50, minimum=0)  # requests/s per device; 0 = off
TELEMETRY_RETENTION_RAW_DAYS = env_int("TELEMETRY_RETENTION_RAW_DAYS", 30, minimum=1)
TELEMETRY_RETENTION_1M_DAYS = env_int("TELEMETRY_RETENTION_1M_DAYS", 365, minimum=1)
TELEMETRY_RETENTION_1H_DAYS = env_int("TELEMETRY_RETENTION_1H_DAYS", 0, minimum=0)  # 0 = forever
DEAD_LETTER_RETENTION_DAYS = env_int("DEAD_LETTER_RETENTION_DAYS", 14, minimum=1)

# Audit log (django-auditlog, entries in audit.AuditEntry; README "Audit log").
AUDITLOG_LOGENTRY_MODEL = "audit.AuditEntry"
AUDITLOG_DISABLE_ON_RAW_SAVE = True  # loaddata is not a person's write
AUDITLOG_CID_HEADER = None  # a client-chosen correlation id is not evidence
AUDIT_RETENTION_DAYS = env_int("AUDIT_RETENTION_DAYS", 365, minimum=1)
MQTT_BRIDGE_CLIENT_ID = env_str("MQTT_BRIDGE_CLIENT_ID", "factory-mqtt-bridge")

# Alarms and notifications (README "Alarms and notifications") --------------------------------
SITE_URL = env_str("SITE_URL", "http://127.0.0.1:8000")  # links in notifications
ALARM_SHELVE_MAX_MINUTES = env_int("ALARM_SHELVE_MAX_MINUTES", 8 * 60, minimum=1)
NOTIFY_GROUP_WINDOW_SECONDS = env_int("NOTIFY_GROUP_WINDOW_SECONDS", 60, minimum=1)
NOTIFY_MAX_RETRIES = env_int("NOTIFY_MAX_RETRIES", 5, minimum=0)
NOTIFY_RETRY_BACKOFF_MAX = 600  # seconds: the longest wait between two delivery attempts
# A delivery still "sending" this long after its attempt began was left by a worker that died
# (the delivery task's hard time limit is 60 s): the sweeper sends it again.
NOTIFY_STUCK_SECONDS = env_int("NOTIFY_STUCK_SECONDS", 75, minimum=1)
NOTIFIER_EMAIL_ENABLED = env_bool("NOTIFIER_EMAIL_ENABLED", True)
NOTIFIER_SMS_ENABLED = env_bool("NOTIFIER_SMS_ENABLED", True)
NOTIFIER_WEBHOOK_ENABLED = env_bool("NOTIFIER_WEBHOOK_ENABLED", True)
NOTIFIER_INAPP_ENABLED = env_bool("NOTIFIER_INAPP_ENABLED", True)
NOTIFIER_WEBHOOK_SECRET = env_secret("NOTIFIER_WEBHOOK_SECRET", "")
NOTIFIER_WEBHOOK_TIMEOUT = env_int("NOTIFIER_WEBHOOK_TIMEOUT", 5, minimum=1)
NOTIFIER_SMS_TIMEOUT = env_int("NOTIFIER_SMS_TIMEOUT", 10, minimum=1)
# Webhooks and the SMS API reach only public addresses, except these hosts and networks (CIDR):
# on-premises receivers, e.g. "hooks.plant.local,10.20.0.0/16" (alerts/notifiers/egress.py).
NOTIFIER_INTERNAL_ALLOWLIST = env_networks("NOTIFIER_INTERNAL_ALLOWLIST", hosts=True)
SMS_API_URL = env_str("SMS_API_URL", "")  # Twilio-style base URL, e.g. https://api.twilio.com/2010-04-01
SMS_ACCOUNT_SID = env_str("SMS_ACCOUNT_SID", "")
SMS_AUTH_TOKEN = env_secret("SMS_AUTH_TOKEN", "")
SMS_FROM = env_str("SMS_FROM", "")

# OEE analytics (README "OEE analytics") -------------------------------------------------------
OEE_MINOR_STOP_SECONDS = env_int("OEE_MINOR_STOP_SECONDS", 120, minimum=0)  # shorter stops are minor stops
OEE_LATE_DATA_DAYS = env_int("OEE_LATE_DATA_DAYS", 3, minimum=0)  # closed reports re-checked for late telemetry
OEE_REPORT_MAX_RETRIES = env_int("OEE_REPORT_MAX_RETRIES", 5, minimum=0)

# Firmware OTA (README "Firmware updates (OTA)") ----------------------------------------------
FIRMWARE_MAX_BYTES = env_int("FIRMWARE_MAX_BYTES", 256 * 1024 * 1024, minimum=1)
FIRMWARE_STORAGE = env_str("FIRMWARE_STORAGE", "default")  # a STORAGES alias (any django-storages backend)
# Ed25519 private key (PEM, or 32 raw bytes base64-encoded); empty: images are not signed.
FIRMWARE_SIGNING_KEY = env_secret("FIRMWARE_SIGNING_KEY", "")
FIRMWARE_UPDATE_TIMEOUT = env_int("FIRMWARE_UPDATE_TIMEOUT", 30 * 60, minimum=1)  # seconds without progress
FIRMWARE_NOTIFY_MQTT = env_bool("FIRMWARE_NOTIFY_MQTT", True)  # publish commands when MQTT_URL is set
# A notified update whose command push has not finished this long after notification was left by a
# worker that died mid-push: the beat (run_rollout_timers) pushes it again. Longer than
# notify_devices' time limit (90 s), so a push under way is not repeated.
FIRMWARE_PUSH_STUCK_SECONDS = env_int("FIRMWARE_PUSH_STUCK_SECONDS", 120, minimum=1)

# Device commands (README "Device commands") ---------------------------------------------------
COMMAND_MAX_TIMEOUT = env_int("COMMAND_MAX_TIMEOUT", 7 * 24 * 3600, minimum=1)  # longest time-out a sender may give
COMMAND_MAX_BYTES = env_int("COMMAND_MAX_BYTES", 16 * 1024, minimum=256)  # params or result, as JSON
COMMAND_NOTIFY_MQTT = env_bool("COMMAND_NOTIFY_MQTT", True)  # publish commands when MQTT_URL is set

# REST API -------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework_simplejwt.authentication.JWTAuthentication",
        # Before the session: a request naming an API key is judged by that key alone.
        "accounts.authentication.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "factory.pagination.Pagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": [
        "factory.filters.FilterBackend",
        "rest_framework.filters.SearchFilter",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_SCHEMA_CLASS": "factory.openapi.AutoSchema",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"]
    + (["rest_framework.renderers.BrowsableAPIRenderer"] if DEBUG else []),
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "EXCEPTION_HANDLER": "factory.exceptions.api_exception_handler",
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    "NUM_PROXIES": 0,  # throttles key on REMOTE_ADDR, which factory.clientip has already decided
}
JWT_SIGNING_KEY = env_secret("JWT_SIGNING_KEY", SECRET_KEY)
if not DEBUG and len(JWT_SIGNING_KEY.encode()) < 32:
    raise ImproperlyConfigured("JWT_SIGNING_KEY (or SECRET_KEY) must be at least 32 bytes for HS256 tokens.")
SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=env_int("JWT_ACCESS_MINUTES", 15, minimum=1)),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=env_int("JWT_REFRESH_DAYS", 7, minimum=1)),
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    # The serializer sends user_logged_in (axes resets the failure count, Django updates
    # last_login), so simplejwt's own last_login write would only duplicate it.
    "UPDATE_LAST_LOGIN": False,
    "TOKEN_OBTAIN_SERIALIZER": "accounts.lockout.AxesTokenObtainPairSerializer",
    "SIGNING_KEY": JWT_SIGNING_KEY,
    "ALGORITHM": "HS256",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Smart Factory IoT API",
    "DESCRIPTION": "Management API for plants, lines, devices, tokens and roles; device ingest endpoints.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Offline: no Swagger validator badge (validator.swagger.io), ReDoc in system fonts (the stock page
    # loads Google Fonts: templates/api/redoc.html leaves that out).
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None},
    "REDOC_UI_SETTINGS": {
        "theme": {
            "typography": {"fontFamily": "system-ui, sans-serif", "headings": {"fontFamily": "system-ui, sans-serif"}}
        },
    },
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "ENUM_NAME_OVERRIDES": {
        "AlarmStateEnum": "alerts.models.alarm.Alarm.State",
        "MachineStateEnum": "devices.models.telemetry.MachineState.State",
        "SeverityEnum": "alerts.models.rule.Severity",
        "RoleEnum": "accounts.roles.Role",
        "RolloutTargetStatusEnum": "firmware.models.RolloutTarget.Status",
        "RolloutStateEnum": "firmware.models.Rollout.State",
        "CommandStateEnum": "commands.models.Command.State",
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "factory.schema.add_device_endpoints",
        "firmware.schema.add_firmware_device_endpoints",
        "commands.schema.add_command_device_endpoints",
    ],
}

# Security (production) ------------------------------------------------------------------------
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEBUG)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31_536_000, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
if env_bool("TRUST_X_FORWARDED_PROTO", False):
    # Only behind a reverse proxy that overwrites this header.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"

# Content-Security-Policy (django-csp; README "Security headers"). Scripts only from our own
# files: no inline script, no inline event handler, no eval, on every page (the dashboard, the
# admin, the API docs). Styles from our files too, no style="" either; the one exception is the
# ReDoc page, whose script writes <style> elements as it renders: that page alone allows them by
# nonce and hash (factory/api_docs.py). ReDoc's search runs in a Web Worker made from a blob:
# URL, and Swagger UI draws its icons as data: images. connect-src adds the host's ws:/wss:
# origin per request (factory/csp.py). CSP_REPORT_ONLY=true sends the same policy as
# Content-Security-Policy-Report-Only, to roll it out by watching reports before enforcing it.
_csp_report_uri = env_str("CSP_REPORT_URI")
_csp_policy = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "worker-src": [SELF, "blob:"],
        "object-src": [NONE],
        "base-uri": [SELF],
        "frame-ancestors": [NONE],
        "form-action": [SELF],
        **({"report-uri": [_csp_report_uri]} if _csp_report_uri else {}),
    }
}
if env_bool("CSP_REPORT_ONLY", False):
    CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY_REPORT_ONLY = None, _csp_policy
else:
    CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY_REPORT_ONLY = _csp_policy, None
# /api/schema/, /api/docs/ and /api/swagger/ only for people who are logged in (the schema: 401
# with a message; the pages: the login page). On by default in production, off in `make run`.
API_DOCS_REQUIRE_LOGIN = env_bool("API_DOCS_REQUIRE_LOGIN", not DEBUG)
CSRF_FAILURE_VIEW = "factory.exceptions.csrf_failure"  # the site's 403 page, for API paths JSON

# Internationalisation, static files -----------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(VAR_DIR / "media")))
MEDIA_URL = "media/"
# WhiteNoise would take these from DEBUG when it starts; spelled out so that DEBUG_PAGES=false (below)
# keeps serving static files from the source tree, fresh on every change, without collectstatic.
WHITENOISE_USE_FINDERS = WHITENOISE_AUTOREFRESH = DEBUG
WHITENOISE_MAX_AGE = 0 if DEBUG else 60
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if env_bool("STATIC_MANIFEST", not DEBUG)
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        "axes": {"level": "WARNING"},
        # "Task ... succeeded" per task: with eager Celery (make run) one line per ingest batch.
        "celery.app.trace": {"level": env_str("CELERY_TRACE_LOG_LEVEL", "WARNING")},
        # "Scheduler: Sending due task ..." every few seconds per periodic task (make run's console).
        "celery.beat": {"level": env_str("CELERY_BEAT_LOG_LEVEL", "WARNING")},
    },
}

# Metrics and structured logs (README "Metrics", "Logs") --------------------------------------
# /metrics (and METRICS_PORT) answer a client address in METRICS_ALLOWED_IPS (CIDRs) or
# "Authorization: Bearer <METRICS_TOKEN>"; with neither set, metrics are off (404). DEBUG (make run)
# lets this machine in by default.
METRICS_TOKEN = env_secret("METRICS_TOKEN", "")
METRICS_ALLOWED_IPS = env_networks("METRICS_ALLOWED_IPS", ["127.0.0.1/32", "::1/128"] if DEBUG else [])
# The MQTT bridge's and the Celery worker's own exporter (they have no web server); 0 = none.
METRICS_PORT = env_int("METRICS_PORT", 0, minimum=0)
METRICS_BIND = env_str("METRICS_BIND", "0.0.0.0")  # noqa: S104 - a container's exporter, guarded as above
# prometheus-client's multiprocess files: every process of one host sharing it is summed in a scrape.
METRICS_DIR = Path(env_str("METRICS_DIR", str(VAR_DIR / "metrics")))
SECURE_REDIRECT_EXEMPT = [*SECURE_REDIRECT_EXEMPT, r"^metrics$"]  # Prometheus scrapes plain HTTP inside
LOG_FORMAT = env_str("LOG_FORMAT", "plain")
if LOG_FORMAT not in ("plain", "json"):
    raise ImproperlyConfigured(f"LOG_FORMAT must be 'plain' (the default) or 'json', not {LOG_FORMAT!r}.")
# First: it reads the TCP peer before factory.clientip replaces it with the client's address.
MIDDLEWARE = ["factory.requestid.RequestIdMiddleware", *MIDDLEWARE]
LOGGING = logs.logging_config(LOG_FORMAT, LOGGING["root"]["level"], LOGGING["loggers"])

# Django's technical error pages ---------------------------------------------------------------
# DEBUG=true shows Django's debug pages for a 404 or a crash. DEBUG_PAGES=false (`make run`'s web
# process, Procfile.dev) turns only those off: people see the site's own 404/403/500 pages, while a
# crash's traceback still reaches the console through the log (django.request), and every developer
# default chosen above from DEBUG (built-in key, local hosts, plain HTTP, static files from the source
# tree, the browsable API) stays. `make run DEBUG_PAGES=true` brings Django's pages back.
if not env_bool("DEBUG_PAGES", True):
    DEBUG = False
