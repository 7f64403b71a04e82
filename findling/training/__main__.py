from findling.training.cli import main

raise SystemExit(main())
