"""callvault.media"""
