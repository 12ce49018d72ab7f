# Shortcuts for `bash dev.sh ...` (the README's commands work without make).
.PHONY: run test lint bench bench-quick venv migrate

run:
	bash dev.sh run

test:
	bash dev.sh test

lint:
	bash dev.sh lint

bench:
	bash dev.sh bench

bench-quick:
	bash dev.sh bench --quick

venv:
	bash dev.sh venv

migrate: venv
	.venv/bin/mediakeep migrate
