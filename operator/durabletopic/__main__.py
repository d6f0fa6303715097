from durabletopic.cli import main

raise SystemExit(main())
