"""The application's reverse-DNS id: the desktop file's, the icon's, the AppStream component's
and the window's (Qt's desktop file name), so the menu, the dock and the window match."""

APP_ID = "io.github.imagegui.ImageGui"
