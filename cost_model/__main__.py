from cost_model.cli import main

raise SystemExit(main())
