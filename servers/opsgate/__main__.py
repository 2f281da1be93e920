from opsgate.cli import main

raise SystemExit(main())
