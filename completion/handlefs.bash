# bash completion for handlefs (commands, options, -o options, mountpoints).
# Install: ln -s "$(npm root -g)/handlefs/completion/handlefs.bash" /usr/share/bash-completion/completions/handlefs
# (or source it from ~/.bashrc). See docs/cli.md.

# Mountpoints of handlefs filesystems, from mountinfo (field 5; octal escapes decoded).
_handlefs_mounts() {  # HANDLEFS_MOUNTINFO: another mountinfo file (tests)
    awk '{ for (i = 7; i <= NF; i++) if ($i == "-") { if ($(i+1) == "fuse.handlefs") { p = $5; gsub(/\\040/, " ", p); print p } break } }' "${HANDLEFS_MOUNTINFO:-/proc/self/mountinfo}" 2>/dev/null
}

_handlefs() {
    local cur prev words cword
    if declare -F _init_completion >/dev/null 2>&1; then
        _init_completion -n = || return
    else
        cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]} words=("${COMP_WORDS[@]}") cword=$COMP_CWORD
    fi
    local commands='mount umount status ls help'
    local cmd='' i
    for ((i = 1; i < cword; i++)); do
        case ${words[i]} in
            mount|umount|unmount|status|ls|help) cmd=${words[i]}; break ;;
        esac
    done
    if [[ -z $cmd ]]; then
        COMPREPLY=($(compgen -W "$commands -h --help -V --version" -- "$cur"))
        return
    fi
    case $cmd in
        mount)
            case $prev in
                --state) local IFS=$'\n'; COMPREPLY=($(compgen -f -- "$cur")); return ;;
                --log-level) COMPREPLY=($(compgen -W 'fatal error warn info debug trace silent' -- "$cur")); return ;;
                -o)
                    # Complete the last of comma-separated options.
                    local done_part='' last=$cur
                    [[ $cur == *,* ]] && done_part=${cur%,*}, && last=${cur##*,}
                    local opts='allow_other default_permissions ro debug entry_timeout= attr_timeout= fsname= subtype= max_read= state= log_level='
                    COMPREPLY=($(compgen -P "$done_part" -W "$opts" -- "$last"))
                    compopt -o nospace 2>/dev/null
                    return ;;
            esac
            if [[ $cur == -* ]]; then
                COMPREPLY=($(compgen -W '--state -o --daemon -d --foreground -f --log-level --help' -- "$cur"))
            else
                local IFS=$'\n'
                COMPREPLY=($(compgen -d -- "$cur"))
            fi ;;
        umount|unmount|status|ls)
            if [[ $cur == -* ]]; then
                case $cmd in
                    status) COMPREPLY=($(compgen -W '--json --prometheus --help' -- "$cur")) ;;
                    ls) COMPREPLY=($(compgen -W '--json --help' -- "$cur")) ;;
                    *) COMPREPLY=($(compgen -W '--help' -- "$cur")) ;;
                esac
            else
                local IFS=$'\n' # mountpoints may hold spaces
                COMPREPLY=($(compgen -W "$(_handlefs_mounts)" -- "$cur"))
            fi ;;
        help)
            COMPREPLY=($(compgen -W "$commands" -- "$cur")) ;;
    esac
}
complete -F _handlefs handlefs
