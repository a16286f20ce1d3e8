# Textile to HTML as Redmine 5 renders it (Debian's `redmine` package): RedCloth3 as
# Redmine ships it, with Redmine's own hard_break and options (see
# lib/redmine/wiki_formatting/textile/formatter.rb). Without Rails, so Redmine's object
# links (#123, r1, attachment:x) and auto-linking are not applied. Reads stdin.
require 'cgi'
require 'active_support/core_ext/object/blank'
REDMINE = ENV.fetch('REDMINE_ROOT', '/usr/share/redmine')
require "#{REDMINE}/lib/redmine/helpers/url.rb"
require "#{REDMINE}/lib/redmine/wiki_formatting/textile/redcloth3.rb"

class RedmineTextile < RedCloth3
  def hard_break(text)
    text.gsub!(/(.)\n(?!\n|\Z| *([#*=]+(\s|$)|[{|]))/, "\\1<br />") if hard_breaks
  end
end

textile = RedmineTextile.new($stdin.read)
textile.hard_breaks = true
textile.no_span_caps = true
textile.filter_styles = false
puts textile.to_html(:textile, :block_markdown_rule)
