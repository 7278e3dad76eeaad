# `make compose-check`: validate docker-compose.yml as in production (deploy/production.env.example)
# and with the `dev` profile (deploy/dev.env), the way Docker Compose reads it (no Docker engine
# needed). Uses `docker compose` (v2 plugin) when present, else `docker-compose`, installing Debian's
# docker-compose package when neither is found.
COMPOSE_FILE ?= docker-compose.yml
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: compose-check
compose-check:
	@if docker compose version >/dev/null 2>&1; then compose="docker compose"; \
	elif command -v docker-compose >/dev/null 2>&1; then compose=docker-compose; \
	else \
		echo "compose-check: installing docker-compose (apt-get)"; \
		$(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq docker-compose >/dev/null || exit 1; \
		compose=docker-compose; \
	fi; \
	echo "compose-check: $$($$compose version --short 2>/dev/null || $$compose version | head -1)"; \
	$$compose -f $(COMPOSE_FILE) --env-file deploy/production.env.example config -q && \
	$$compose -f $(COMPOSE_FILE) --env-file deploy/dev.env --profile dev config -q && \
	echo "compose-check: $(COMPOSE_FILE) is valid"
