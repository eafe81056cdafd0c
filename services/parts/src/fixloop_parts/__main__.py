from fixloop_parts.main import main

main()
