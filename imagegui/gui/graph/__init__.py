"""The chain graph on screen: scene, view, cards, minimap."""
