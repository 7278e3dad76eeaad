# `make fuzz`: the Schemathesis pass of tests/test_api_fuzz.py with more examples than CI's 20 per
# operation; `make fuzz FUZZ_EXAMPLES=1000` for a longer one. Derandomized: the same run every time.
FUZZ_EXAMPLES ?= 200

.PHONY: fuzz
fuzz: install
	FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(PY) -m pytest tests/test_api_fuzz.py -p no:cacheprovider
