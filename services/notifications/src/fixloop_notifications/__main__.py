from fixloop_notifications.main import main

main()
